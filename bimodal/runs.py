"""The run folder's bookkeeping: its lock, the check that it holds the requested config, moving an old run aside
(--no-resume), reading last.pt back to resume (and the RNG state it stores), and the engine's messages on stderr."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import time
from pathlib import Path

import numpy as np
import torch

from bimodal.config import Config, ConfigError, from_dict


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


@contextlib.contextmanager
def _run_lock(run_dir: Path):
    """Hold an exclusive lock on a run folder. Two notebooks of a parallel batch (or two shells) that need the same
    run would otherwise both train it; the second now waits and then reuses the first one's result. The OS drops
    the lock when its holder dies (SIGKILL included), so a killed run never blocks its restart."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _warn(f"{run_dir.name}: another process is training this run; waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _warn(message: str) -> None:
    """A message for the person running the command: stderr, so that stdout stays the JSON summary alone."""
    import sys

    print(f"bimodal train: {message}", file=sys.stderr, flush=True)


def config_difference(old: dict, new: dict, prefix: str = "") -> list[str]:
    """'section.field: old -> new' for every field two config dicts disagree on (missing = '<unset>')."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "<unset>"), new.get(key, "<unset>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_difference(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


def check_test_sets(test_sets) -> None:
    """Unknown test-set names fail before training, not after it (ConfigError listing the known ones)."""
    from bimodal.datasets.mixtures import EVAL_SETS

    known = [name for name in EVAL_SETS if name != "val2"]  # val2 picks the checkpoint: never a test set
    unknown = [name for name in test_sets if name not in known]
    if unknown or not test_sets:
        raise ConfigError(
            f"--test-sets: unknown test set(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"choose from {', '.join(known)}"
        )


def check_run_folder(cfg: Config, run_dir: Path) -> None:
    """Refuse a run folder that is a file, or that holds a run of another config (finished or not): ConfigError
    naming the fields that differ. Checked before a finished run's summary is returned, so a cached summary is
    never passed off as the result of another config."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--run-dir {run_dir}: is a file, not a folder")
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        return
    try:
        stored = from_dict(json.loads(cfg_path.read_text()))
    except (ValueError, ConfigError) as exc:
        raise ConfigError(f"{cfg_path}: unreadable run config ({exc}); use another run folder") from None
    if stored.hash() != cfg.hash():
        diff = config_difference(stored.identity(), cfg.identity())
        raise ConfigError(
            f"{run_dir}: the folder holds a run of another config ({'; '.join(diff) or 'identity'}; "
            f"stored -> requested); use another --run-dir or --no-resume to replace it"
        )


def move_run_aside(run_dir: Path) -> Path | None:
    """--no-resume: move the folder's files (all but the lock) into <parent>/.replaced/<name>-<UTC time>, so that a
    fresh run appends to no old log and reuses no old checkpoint, and nothing is deleted (a hidden folder: globs
    over runs/<profile>-* do not see the old runs). Returns that folder."""
    files = [p for p in run_dir.iterdir() if p.name != ".lock"] if run_dir.is_dir() else []
    if not files:
        return None
    aside = run_dir.parent / ".replaced" / f"{run_dir.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    aside.mkdir(parents=True, exist_ok=False)
    for path in files:
        path.rename(aside / path.name)
    _warn(f"--no-resume: moved the previous contents of {run_dir} to {aside}")
    return aside


def load_resume_state(last_path: Path, device) -> dict | None:
    """last.pt, or None with a warning naming the file when it is damaged (truncated, not a checkpoint, keys
    missing): the run then starts again from scratch, which the per-epoch seeding makes the same run. The damaged
    file is kept beside as last.pt.damaged."""
    try:
        state = torch.load(last_path, map_location=device, weights_only=False)  # our own file: includes RNG state
        missing = {"model", "optimizer", "scheduler", "rng", "epoch", "best"} - set(state)
        if missing:
            raise KeyError(f"keys {sorted(missing)} missing")
        return state
    except Exception as exc:  # truncated zip, unpickling errors, wrong content: many types
        damaged = last_path.with_name(last_path.name + ".damaged")
        os.replace(last_path, damaged)
        _warn(
            f"{last_path}: damaged checkpoint ({type(exc).__name__}: {str(exc)[:200]}); moved to {damaged.name}, "
            f"training this run again from epoch 1"
        )
        return None
