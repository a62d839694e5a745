"""The surrogate's training corpus in memory: the embedding corpus of bimodal.datasets (other SoundFonts, other
melodies and 40+ extra labels) — never SynthMUSIC-21, which is the separator's domain and the surrogate's zero-shot
test."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bimodal.audio import load_audio
from bimodal.config import get_config
from bimodal.datasets.labels import single_prompt
from bimodal.datasets.manifest import embedding_corpus_manifest
from bimodal.embedding import SURROGATE_RATE

PROMPT = single_prompt("{}")  # "The sound of {}": the zero-shot prompt, Table 6's single-source template


@dataclass
class Corpus:
    """Clips of one split in memory: waves (float32 [T] at 11,025 Hz), their labels and caption variants."""

    waves: list[np.ndarray]
    labels: list[str]
    captions: dict[str, list[str]]  # label -> every caption variant seen for it (plus the zero-shot template)

    @property
    def label_names(self) -> list[str]:
        return sorted(set(self.labels))


def corpus_from_frame(df: pd.DataFrame, root: Path | None = None) -> Corpus:
    """Load the clips of an index frame (columns path, label and optionally captions/caption)."""
    for col in ("path", "label"):
        if col not in df.columns:
            raise ValueError(f"embedding corpus index lacks the column {col!r} (has {', '.join(df.columns)})")
    if df.empty:
        raise ValueError("embedding corpus index is empty")
    waves, labels, captions = [], [], {}
    for row in df.itertuples(index=False):
        path = Path(row.path)
        if not path.is_absolute() and root is not None:
            path = Path(root) / path
        waves.append(load_audio(path, SURROGATE_RATE))
        labels.append(str(row.label))
        variants = captions.setdefault(str(row.label), [PROMPT.format(row.label)])
        raw = str(getattr(row, "captions", "") or getattr(row, "caption", "") or "")
        for c in raw.split("|"):
            if c.strip() and c.strip() not in variants:
                variants.append(c.strip())
    return Corpus(waves, labels, captions)


def load_corpus(
    profile: str, root: Path | None = None, soundfonts: tuple[str, ...] | list[str] = ("timgm6mb",)
) -> tuple[Corpus, Corpus]:
    """(train, val) of a profile's embedding corpus rendered in each of `soundfonts` by `bimodal data build`
    (DatasetNotBuilt names the command when one is missing); the SoundFonts' clips are pooled."""
    data = get_config(profile, {"data.root": str(root)} if root is not None else None).data
    df = pd.concat([embedding_corpus_manifest(data, sf) for sf in soundfonts], ignore_index=True)
    return corpus_from_frame(df[df["split"] == "train"], root), corpus_from_frame(df[df["split"] == "val"], root)
