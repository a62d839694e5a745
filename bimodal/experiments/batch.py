"""The papermill batch behind `make reproduce`: the numbered notebooks, 00 and 01 first, the others in parallel,
then a summary with every rendered table."""

from __future__ import annotations

import argparse
import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import pandas as pd

from bimodal.config import get_config
from bimodal.experiments.collect import batch_runs
from bimodal.experiments.tables import TABLES
from bimodal.utils import REPO_ROOT, available_cpus, results_root

NOTEBOOK_DIR = REPO_ROOT / "notebooks"


def notebooks(only: list[str] | None = None) -> list[Path]:
    paths = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if p.name[:2] in only or p.stem in only]
    return paths


def run_notebook(path: Path, out_dir: Path, parameters: dict, cell_timeout: float | None = None) -> dict:
    """Execute one notebook with papermill; never raises: returns status, seconds and, on failure, the cell and
    error so that the batch can go on with the others. `cell_timeout` (seconds) fails a cell that runs longer
    (the tests set one, so a hung kernel fails with its cell named instead of stalling CI; the batch does not:
    quick-profile training cells run for an hour)."""
    import papermill as pm

    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / path.name
    t0 = time.time()
    try:
        pm.execute_notebook(
            str(path),
            str(out),
            parameters=parameters,
            kernel_name="python3",
            cwd=str(path.parent),
            progress_bar=False,
            execution_timeout=cell_timeout,
        )
        return {"notebook": path.name, "status": "ok", "seconds": round(time.time() - t0, 1), "output": str(out)}
    except Exception as exc:  # PapermillExecutionError carries the failing cell; anything else is reported too
        cell = getattr(exc, "exec_count", None)
        return {
            "notebook": path.name,
            "status": "failed",
            "seconds": round(time.time() - t0, 1),
            "output": str(out),
            "cell": cell,
            "error": f"{getattr(exc, 'ename', type(exc).__name__)}: {getattr(exc, 'evalue', str(exc))}".strip()[:2000],
            "traceback": traceback.format_exc()[-4000:],
        }


def build_data(profile: str) -> None:
    """The batch's explicit build step: the profile's SynthMUSIC-21 and its embedding corpus in every SoundFont the
    profile's surrogate trains on (incremental: nothing is rendered twice). Notebooks only load data."""
    import torch

    from bimodal.datasets.build import build_embedding_corpus, build_synthmusic21

    cfg = get_config(profile)
    if cfg.data.dataset != "synthmusic21":
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        build_synthmusic21(cfg.data, profile)
        for soundfont in cfg.embedding.soundfont_list:
            build_embedding_corpus(profile, cfg.data.root or None, soundfont=soundfont, data=cfg.data)
    finally:
        torch.set_num_threads(threads)


def reproduce(
    profile: str = "quick",
    only: list[str] | None = None,
    jobs: int = 1,
    out_dir: str | Path | None = None,
    extra_parameters: dict | None = None,
) -> pd.DataFrame:
    """Build the profile's data (build_data), run the numbered notebooks with papermill (in parallel with `jobs` > 1;
    0 = one per available CPU), then render all tables."""
    out_dir = Path(out_dir or REPO_ROOT / "outputs" / f"notebooks-{profile}")
    jobs = jobs or available_cpus()  # 0 = one notebook per CPU this process may use
    params = {"profile": profile, **(extra_parameters or {})}
    paths = notebooks(only)
    # 00 (data) and 01 (embedding) prepare what the others use: run them first, in order.
    first = [p for p in paths if p.name[:2] in ("00", "01")]
    rest = [p for p in paths if p not in first]
    t0 = time.time()
    build_data(profile)
    reports = [run_notebook(p, out_dir, params) for p in first]
    if jobs > 1 and len(rest) > 1:
        # the kernels inherit the environment: share the cores between the parallel notebooks instead of letting
        # each one's torch take all of them (the quick models are small; oversubscribed threads only contend)
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, available_cpus() // min(jobs, len(rest)))))
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(run_notebook, p, out_dir, params) for p in rest]
            reports += [f.result() for f in as_completed(futures)]
    else:
        reports += [run_notebook(p, out_dir, params) for p in rest]
    report = pd.DataFrame(reports).sort_values("notebook")
    report.to_csv(out_dir / "batch_report.csv", index=False)
    summary = [
        f"# Reproduction summary ({profile} profile)",
        "",
        f"Wall-clock: {time.time() - t0:.0f} s for {len(paths)} notebooks.",
        "",
    ]
    summary += [
        f"- {r.notebook}: {r.status} ({r.seconds} s)" + (f" — cell {r.cell}: {r.error}" if r.status != "ok" else "")
        for r in report.itertuples()
    ]
    summary += [""]
    for tid in TABLES:
        path = results_root(profile) / f"{tid}.md"
        if path.exists():
            summary += [path.read_text(), ""]
    inventory = batch_runs(profile, since=t0)
    if not inventory.empty:
        fresh = inventory[inventory["trained_in_batch"]]
        summary.insert(
            3,
            f"Runs behind the tables: {len(inventory)}; trained in this batch: {len(fresh)}; reused "
            f"from runs/: {len(inventory) - len(fresh)} (their own training took "
            f"{inventory.loc[~inventory['trained_in_batch'], 'train_seconds'].sum():.0f} CPU-process "
            f"seconds). Per run: results/{profile}_batch_runs.csv.\n",
        )
    (out_dir / "SUMMARY.md").write_text("\n".join(summary))
    return report


def reproduce_cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bimodal reproduce", description="papermill batch of the notebooks")
    p.add_argument(
        "--profile",
        default="quick",
        choices=["smoke", "quick", "paper"],
        help="smoke (seconds), quick (default: minutes to an hour on a CPU) or paper (the paper's sizes)",
    )
    p.add_argument("--only", default="", help="comma-separated notebook numbers, e.g. 02,04")
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=1,
        help="notebooks run in parallel after 00 and 01 (0 = one per available CPU)",
    )
    p.add_argument("--out", default=None, help="output folder (default outputs/notebooks-<profile>)")
    args = p.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    known = {n for path in notebooks() for n in (path.name[:2], path.stem)}
    unknown = [s for s in only if s not in known]
    if unknown:
        p.error(f"--only: no notebook {', '.join(unknown)}; notebooks: {', '.join(path.stem for path in notebooks())}")
    report = reproduce(args.profile, only, args.jobs, args.out)
    for r in report.itertuples():
        line = f"{r.notebook:<32} {r.status:<7} {r.seconds:>8} s"
        if r.status != "ok":
            line += f"  cell {r.cell}: {r.error}"
        print(line)
    failed = int((report["status"] != "ok").sum())
    print(f"{len(report) - failed} passed, {failed} failed")
    return 1 if failed else 0
