"""Helpers the notebooks call (kept in the package so that tests reach them): a cell's run trained if needed, its
separator loaded, the models the listening notebooks compare, a chosen test mixture."""

from __future__ import annotations

from pathlib import Path

from bimodal.config import get_config
from bimodal.experiments.tables import _run, _semi


def config_of(profile: str, overrides: dict, seed: int = 0):
    return get_config(profile, {**overrides, "train.seed": seed})


def ensure_run(profile: str, overrides: dict, seed: int = 0, progress: bool = True) -> Path:
    """Train the run if it is not cached yet; return its folder."""
    from bimodal.train import run_dir_for, train_run

    cfg = config_of(profile, overrides, seed)
    train_run(cfg, progress=progress)
    return run_dir_for(cfg)


def load_model(profile: str, overrides: dict, seed: int = 0, progress: bool = True):
    """(separator chosen on validation, its config, the embedding) of a run, training it first if needed. A damaged
    best.pt of a finished run is rebuilt from the copy of the best weights in last.pt (bimodal.train.restore_best),
    with a warning; CheckpointError naming the file when it cannot be."""
    from bimodal.backends import load_embedding
    from bimodal.model import CheckpointError, Separator
    from bimodal.train import restore_best

    run_dir = ensure_run(profile, overrides, seed, progress)
    cfg = config_of(profile, overrides, seed)
    embedding = load_embedding(cfg.embedding)
    try:
        separator = Separator.from_pretrained(run_dir / "best.pt")
    except CheckpointError:
        restore_best(run_dir, cfg, embedding)
        separator = Separator.from_pretrained(run_dir / "best.pt")
    return separator.eval(), cfg, embedding


# the runs the qualitative and listening notebooks compare (the 2-source cells of the tables)
MODELS = {
    "mix-and-separate": _run("mix_and_separate", 2),
    "proposed": _run("proposed", 2),
    "supervised": _run("supervised"),
    "semi-supervised 5%": _semi(0.05, 2),
}


def pair_mixture(data_cfg, classes: list[str], split: str = "test"):
    """Sources [S, T] for a chosen class combination (Figures 8–11): the first `split` clip of each class in the
    manifest, centre segment, each scaled by 1/S as in the test sets."""
    import numpy as np
    import torch

    from bimodal.datasets.labels import CLASSES
    from bimodal.datasets.manifest import load_manifest
    from bimodal.datasets.mixtures import frames_at_rate, read_segment

    unknown = [c for c in classes if c not in CLASSES]
    if unknown:
        raise ValueError(f"unknown class(es) {unknown}; SynthMUSIC-21 classes: {', '.join(CLASSES)}")
    manifest = load_manifest(data_cfg)
    waves = []
    for cls in classes:
        rows = manifest[(manifest["cls"] == cls) & (manifest["split"] == split)]
        if rows.empty:
            raise ValueError(f"no {split} clip of class {cls!r} in the manifest")
        path = str(rows.iloc[0]["path"])
        T = data_cfg.segment_samples
        start = max(0, (frames_at_rate(path, data_cfg.sample_rate) - T) // 2)
        waves.append(read_segment(path, start, T, data_cfg.sample_rate))
    return torch.from_numpy((np.stack(waves) / len(classes)).astype(np.float32))
