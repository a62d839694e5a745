"""The surrogate's own training settings: the `embedding.*` config fields other than the four that say which
embedding a separator run uses (bimodal.config.EMBEDDING_USE_FIELDS; of those, the run's config hash has all but the
checkpoint, which enters its id by its bytes' sha256), and the
defaults of `bimodal embedding train`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from bimodal.config import EMBEDDING_USE_FIELDS, Config, EmbeddingConfig, get_config
from bimodal.utils import runs_root

# how `bimodal embedding train` runs unless told: one torch thread (the machine is shared) and this many
# evaluations on the corpus validation split, which select the checkpoint; the model card omits the defaults
TRAIN_THREADS, TRAIN_EVALS = 1, 5


def training_fields(embedding: dict) -> dict:
    """The surrogate-training fields of an `embedding` config section (a dict, e.g. one recorded in a checkpoint)."""
    return {k: v for k, v in embedding.items() if k not in EMBEDDING_USE_FIELDS}


def non_default_fields(trained: dict, profile: str) -> list[tuple[str, object]]:
    """The surrogate-training fields of a recorded config that differ from the profile's defaults."""
    default = get_config(profile).to_dict()["embedding"]
    return [(k, v) for k, v in training_fields(trained).items() if k in default and default[k] != v]


def unknown_fields(recorded: dict) -> list[str]:
    """Recorded config fields that EmbeddingConfig no longer has (such a record cannot be replayed as it was)."""
    return sorted(set(recorded) - set(EmbeddingConfig.__dataclass_fields__))


def training_key(cfg: Config) -> str:
    """12 hex digits naming a surrogate training: the profile, the data section (the corpus's size, rate, seed) and
    the whole embedding section. Not Config.hash(), which leaves the surrogate's training fields out by design."""
    d = cfg.to_dict()
    blob = json.dumps({k: d[k] for k in ("profile", "data", "embedding")}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def default_out(cfg: Config) -> Path:
    """Where `bimodal embedding train` saves a checkpoint unless told: runs/embedding/<training key>/."""
    return runs_root() / "embedding" / training_key(cfg) / "surrogate.pt"
