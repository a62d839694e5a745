"""Where the generated datasets live and how their clips are named and split.

Layout under ``data_root(cfg.root)``::

    synthmusic21/<key>/clips/<class>/<class>_<idx>.wav   + manifest.csv   (key = rate, clip length, seed, version)
    embedding_corpus/<key>/clips/<label>/<label>_<idx>.wav + manifest.csv

The split of a clip follows its index (`SPLIT_PATTERN`: 70/10/20 train/val/test in every class).
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from bimodal.config import DataConfig
from bimodal.datasets.labels import slug
from bimodal.utils import atomic_write_bytes, data_root

SYNTH_VERSION = 2  # bump when rendering changes: the dataset key changes and nothing stale is reused

# Split of clip idx within its class: idx % 10 -> split. Test and val come early so that even the 6-clip smoke
# profile has every split (train 0,3,5 / test 1,4 / val 2).
SPLIT_PATTERN = ("train", "test", "val", "train", "test", "train", "train", "train", "train", "train")
EMBEDDING_VAL_EVERY = 10  # embedding corpus: idx % 10 == 1 -> val (smoke's 2 clips/label keep one), val melodies

SEPARATION_COLUMNS = ["path", "cls", "idx", "melody_id", "group", "split", "tempo", "sha256"]
EMBEDDING_COLUMNS = ["path", "label", "idx", "caption", "captions", "melody_id", "group", "split", "tempo", "sha256"]


def clip_split(idx: int) -> str:
    return SPLIT_PATTERN[idx % len(SPLIT_PATTERN)]


def clip_path(label: str, idx: int) -> str:
    """A clip's path relative to its dataset folder."""
    return f"clips/{slug(label)}/{slug(label)}_{idx:05d}.wav"


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """A CSV written atomically (a reader never sees half a manifest)."""
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    atomic_write_bytes(path, buf.getvalue().encode())


def synth_key(cfg: DataConfig) -> str:
    return f"sr{cfg.sample_rate}_n{cfg.clip_samples}_seed{cfg.seed}_v{SYNTH_VERSION}"


def synthmusic21_dir(cfg: DataConfig) -> Path:
    """SynthMUSIC-21's folder; the varied rendering (data.variety) has its own, beside the basic one."""
    key = synth_key(cfg) + ("" if cfg.variety == "basic" else f"_{cfg.variety}")
    return data_root(cfg.root) / "synthmusic21" / key


def embedding_dir(cfg: DataConfig, soundfont: str = "timgm6mb") -> Path:
    """Folder of the embedding corpus rendered with one corpus SoundFont (TimGM6mb keeps the folder it always had)."""
    base = data_root(cfg.root) / "embedding_corpus" / synth_key(cfg)
    return base if soundfont == "timgm6mb" else base.with_name(f"{base.name}-{soundfont}")


def absolute(df: pd.DataFrame, base: Path) -> pd.DataFrame:
    """The frame with every relative `path` made absolute under `base`."""
    df = df.copy()
    df["path"] = [str(base / p) if not Path(p).is_absolute() else p for p in df["path"]]
    return df.reset_index(drop=True)
