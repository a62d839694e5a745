"""Replaying a surrogate's training: the stages its checkpoints record (warm starts followed back by name or file,
checked by sha256), retrained one by one with their recorded config, seed, threads and evaluations
(`bimodal embedding replay`)."""

from __future__ import annotations

from pathlib import Path

import torch

from bimodal.config import get_config
from bimodal.embedding import ASSET, surrogate_path
from bimodal.surrogate.settings import TRAIN_EVALS, TRAIN_THREADS, training_fields, unknown_fields
from bimodal.surrogate.training import train_surrogate
from bimodal.utils import file_sha256, runs_root


def training_chain(checkpoint: str | Path) -> list[dict]:
    """The training stages that produced a surrogate checkpoint, first stage first: each stage's checkpoint file and
    its recorded embedding config, profile, threads and evaluations. Follows the warm-start (`embedding.init`)
    records back through shipped names or paths, and refuses a stage whose file no longer has the recorded sha256."""
    stages, path = [], surrogate_path(str(checkpoint))
    while True:
        if not path.is_file():
            raise FileNotFoundError(f"surrogate checkpoint {path} does not exist")
        meta = torch.load(path, map_location="cpu", weights_only=True).get("metadata", {})
        if "config" not in meta:
            raise ValueError(f"{path}: no training config recorded, so its training cannot be replayed")
        stages.append(
            {
                "file": path,
                "config": meta["config"],
                "profile": meta.get("profile", "quick"),
                "threads": meta.get("threads", TRAIN_THREADS),
                "evals": meta.get("evals", TRAIN_EVALS),
            }
        )
        init = meta.get("init")
        if not init:
            return stages[::-1]
        candidates = [ASSET.parent / init["file"]]  # the file name among the shipped assets, or else ...
        try:  # ... the name or path the stage was configured with (assets may be renamed: the digest decides)
            candidates.insert(0, surrogate_path(init["name"], field="embedding.init"))
        except FileNotFoundError:
            pass
        path = next((c for c in candidates if c.is_file() and file_sha256(c)[:16] == init["sha256"]), None)
        if path is None:
            raise FileNotFoundError(
                f"{stages[-1]['file']} was warm-started from {init['name']} (file {init['file']}, "
                f"sha256 {init['sha256']}…), and no file with that digest is at "
                f"{' or '.join(map(str, dict.fromkeys(candidates)))}: the chain cannot be replayed"
            )


def _finished(checkpoint: Path, init: Path | None) -> bool:
    """A checkpoint train_surrogate completed (it saves the best-so-far during training, the history at the end),
    warm-started from `init` as it is now (None: from scratch)."""
    if not checkpoint.is_file():
        return False
    meta = torch.load(checkpoint, map_location="cpu", weights_only=True).get("metadata", {})
    started = meta.get("init", {}).get("sha256")
    return "train_seconds" in meta and started == (file_sha256(init)[:16] if init else None)


def replay(
    checkpoint: str | Path = "",
    out_dir: str | Path | None = None,
    *,
    profile: str | None = None,
    progress: bool = True,
    **train_kw,
) -> list[Path]:
    """Retrain a surrogate (a shipped name or a path; "" = the default) the way it was made: every stage of
    :func:`training_chain`, with its recorded config, seed, threads and evaluations, each warm-started from the
    previous stage's *new* checkpoint, into `out_dir` (default runs/embedding/replay-<name>). Stages already finished
    there are kept (a stopped replay resumes at the stage it was in). Returns the stage files, last stage last."""
    if out_dir is None:
        out_dir = runs_root() / "embedding" / f"replay-{surrogate_path(str(checkpoint)).stem}"
    out_dir, outs, threads = Path(out_dir), [], torch.get_num_threads()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        for k, stage in enumerate(training_chain(checkpoint), 1):
            unknown = unknown_fields(stage["config"])
            if unknown:
                raise ValueError(
                    f"{stage['file']}: its recorded config fields {unknown} do not exist in "
                    f"EmbeddingConfig any more, so this stage cannot be replayed as recorded"
                )
            over = {f"embedding.{f}": v for f, v in training_fields(stage["config"]).items()}
            over["embedding.init"] = str(outs[-1]) if outs else ""
            cfg = get_config(profile or stage["profile"], over)
            out = out_dir / f"stage{k}_{stage['file'].stem}.pt"
            if _finished(out, outs[-1] if outs else None):
                print(f"stage {k}: {out} is finished, kept")
            else:
                torch.set_num_threads(stage["threads"])
                print(
                    f"stage {k}: training {out} ({stage['config'].get('steps')} steps, {stage['threads']} threads)",
                    flush=True,
                )
                train_surrogate(cfg, out, evals=stage["evals"], progress=progress, **train_kw)
            outs.append(out)
    finally:
        torch.set_num_threads(threads)
    return outs
