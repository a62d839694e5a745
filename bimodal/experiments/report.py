"""Rendering results: a table as markdown ("paper" beside "here" in every column); docs/RESULTS.md, the README's
headline-claims section and the asset index, written from results/ and the shipped weights by `bimodal report`
(never typed by hand)."""

from __future__ import annotations

import argparse
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bimodal.experiments.tables import Table
from bimodal.utils import REPO_ROOT, available_cpus, outputs_root, results_root


def _fmt(value, std=None, n=None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{value:.1f}"
    if std is not None and not (isinstance(std, float) and math.isnan(std)):
        text += f" ± {std:.1f}"
    return text


def _rows_by_label(df: pd.DataFrame, field: str, every: str, name_columns: bool = False) -> str:
    """The table's rows grouped by a per-cell label (`field`): "<label>, <every>" when one label covers every
    labelled cell, else "<label>: rows; ...". With `name_columns`, a row whose cells carry several labels is named
    with the column of each cell. "" when no cell has the label."""
    labels = df[field].dropna() if field in df else pd.Series(dtype=str)
    labels = labels[labels != ""]
    if labels.empty:
        return ""
    rows = df.loc[labels.index, "row"]
    mixed = {row for row in rows if name_columns and labels[rows == row].nunique() > 1}

    def name(i) -> str:
        return f"{df.at[i, 'row']} ({df.at[i, 'column']})" if df.at[i, "row"] in mixed else df.at[i, "row"]

    by_label = {
        label: list(dict.fromkeys(name(i) for i in labels.index[labels == label])) for label in dict.fromkeys(labels)
    }
    if len(by_label) == 1:
        return f"{next(iter(by_label))}, {every}"
    return "; ".join(f"{label}: {', '.join(names)}" for label, names in by_label.items())


def render_markdown(df: pd.DataFrame, table: Table) -> str:
    """A pivot with "paper | here" in every column; cells not run show their status."""
    cols = list(dict.fromkeys(df["column"]))
    lines = [
        f"### {table.title}",
        "",
        f"profile: {df['profile'].iloc[0]}; here = mean ± std over seeds "
        f"(n in brackets); SDR in dB on the 2-source test set.",
        "",
        "| | " + " | ".join(f"{c}: paper | {c}: here" for c in cols) + " |",
        "|---|" + "---|---|" * len(cols),
    ]
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
    scored = _rows_by_label(df, "embedding", "in every run that uses it")
    if scored:
        lines += ["", f"L_CNT scored by: {scored}."]
    # where the runs were trained: a run id includes the execution (CPU instruction set, threads), and a table may
    # hold runs of several machines (each cell's runs are its seeds; another execution acts like another seed)
    trained = _rows_by_label(df, "execution", "every run", name_columns=True)
    if trained:
        lines += ["", f"Trained on: {trained}."]
    reasons = sorted({s for s in df["status"] if isinstance(s, str) and s.startswith("not run")})
    if reasons:
        lines += ["", "Not run: " + "; ".join(r.removeprefix("not run: ") for r in reasons) + "."]
    if table.note:
        lines += ["", table.note]
    return "\n".join(lines) + "\n"


def _replace_between(text: str, tag: str, body: str, where: str = "README.md") -> str:
    start, end = f"<!-- {tag}:start -->", f"<!-- {tag}:end -->"
    if start not in text or end not in text:
        raise ValueError(f"{where}: the generated section needs the markers {start} and {end}")
    i, j = text.index(start) + len(start), text.index(end)
    return text[:i] + "\n" + body.rstrip() + "\n" + text[j:]


def _shift_headings(markdown: str, top: int = 3, title: str | None = None) -> str:
    """A results file's markdown with its headings moved so that its first heading is at level `top` (its first
    heading replaced by `title` when given): each file keeps its own structure inside docs/RESULTS.md."""
    lines = markdown.strip().splitlines()
    levels = [len(line) - len(line.lstrip("#")) for line in lines if line.startswith("#")]
    shift = top - levels[0] if levels else 0
    out, first = [], True
    for line in lines:
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            text = line.lstrip("#").strip()
            if first and title is not None:
                text = title
            first = False
            line = "#" * max(1, level + shift) + " " + text
        out.append(line)
    return "\n".join(out)


def _csv_markdown(path: Path) -> str:
    """A small CSV as a markdown table."""
    return _df_markdown(pd.read_csv(path, keep_default_na=False))


def _df_markdown(df: pd.DataFrame) -> str:
    """A small DataFrame as a markdown table (pandas' to_markdown needs tabulate, which the lock does not carry)."""
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


# The order of docs/RESULTS.md: the paper's tables (ids tableN / figureN), then the tables this repository adds; a
# declared table missing here comes after the others of its group, in declaration order.
PAPER_ORDER = ("figure1", "table1", "table8", "table9", "table2", "table14")
ADDED_ORDER = ("three_way", "diagnosis", "teachers", "cnt_floor")
# results/*.csv that are not tables of their own (per-metric and per-class detail, measurements, run lists)
NOT_TABLES = ("_metrics.csv", "timings.csv", "data_build.csv", "_batch_runs.csv")
BATCH_COST = "_batch_cost_"  # results/<profile>_batch_cost_<cells>.csv (`bimodal tables --cost`): in the timings
CSV_TITLES = {
    "cnt_reference": "L_CNT of reference predictions on training batches, per K: the clean sources, each source's "
    "component mixture and the MoM, scored by the default teacher (`bimodal embedding cnt-reference`); compare "
    "with a run's training L_CNT in the headline runs table",
    "table7_params": "Table 7 parameter counts: each variant at the paper size beside the paper's, and at the "
    "trained size (bimodal.experiments.architecture)",
    "table16_proxy": "Table 16 protocol, automatic proxy: the joint embedding answers the listening test "
    "(notebook 07; not human judgement)",
}


HEADLINE_METHODS = ("supervised", "mix_and_separate", "proposed", "semi_supervised")


def headline_records(res: Path | None = None, profile: str = "quick") -> dict[tuple, list[dict]]:
    """The recorded runs (results/runs) of the headline configs, i.e. a method's profile defaults at a K (plus the
    single-source fraction of a semi-supervised run): {(method, K or 1, fraction or None): [records by seed]}. A run
    is a headline run when its recorded config hash is that of `get_config(profile, {method, K, fraction, seed})`; a
    record recovered from the tables has no config and is left out (it has no training time or curve either)."""
    import json

    from bimodal.config import get_config
    from bimodal.train import embedding_fingerprint as fingerprint

    res = res or results_root()
    groups: dict[tuple, list[dict]] = {}
    for path in sorted((res / "runs").glob(f"{profile}-*.json")):
        rec = json.loads(path.read_text())
        cfg = rec.get("config")
        if not cfg or cfg["train"]["method"] not in HEADLINE_METHODS or not rec.get("train_seconds"):
            continue
        method, k, frac = cfg["train"]["method"], int(cfg["data"]["k_sources"]), cfg["data"]["single_source_fraction"]
        over = {"train.method": method, "data.k_sources": k, "train.seed": cfg["train"]["seed"]}
        if method == "semi_supervised":
            over["data.single_source_fraction"] = frac
        default = get_config(profile, over)
        if default.hash() != rec.get("config_hash") or rec.get("embedding_fingerprint") != fingerprint(default):
            continue  # a variant (another α, input, ... or teacher: the hash leaves the weights to the fingerprint)
        groups.setdefault(
            (method, 1 if method == "supervised" else k, frac if method == "semi_supervised" else None), []
        ).append({**rec, "_epochs": int(cfg["train"]["epochs"])})
    for recs in groups.values():
        recs.sort(key=lambda r: r["seed"])
    return dict(sorted(groups.items(), key=lambda kv: (HEADLINE_METHODS.index(kv[0][0]), kv[0][1])))


def headline_runs(res: Path | None = None, profile: str = "quick") -> pd.DataFrame:
    """`headline_records` as a table, one row per (method, K, fraction): the seeds, each seed's best validation
    epoch of the epochs trained, the median training time and its ratio to mix-and-separate at the same K."""
    groups = headline_records(res, profile)
    rows = []
    for (method, k, frac), recs in groups.items():
        seconds = sorted(float(r["train_seconds"]) for r in recs)
        rows.append(
            {
                "method": method + (f" {frac:.0%}" if frac is not None else ""),
                "K": "single" if method == "supervised" else k,
                "seeds": " ".join(str(r["seed"]) for r in recs),
                "best validation epoch (of the epochs trained)": " ".join(
                    (f"{int(r['best_epoch']) + 1}" if r.get("best_epoch") is not None else "?") + f"/{r['_epochs']}"
                    for r in recs
                ),
                "median train seconds": round(seconds[len(seconds) // 2], 0),
                "training L_CNT, last epoch": " ".join(
                    f"{r['epochs'][-1]['train_cnt']:.2f}" if r.get("epochs") and "train_cnt" in r["epochs"][-1] else "–"
                    for r in recs
                )
                if method in ("proposed", "semi_supervised")
                else "",
                "torch threads": " ".join(sorted({str(r.get("execution", {}).get("threads", "?")) for r in recs})),
            }
        )
    df = pd.DataFrame(rows)
    if not df.empty:  # cost relative to mix-and-separate at the same K (what issue 17's ratio is about)
        mas = {r["K"]: r["median train seconds"] for r in rows if r["method"] == "mix_and_separate"}
        df["× mix-and-separate"] = [
            f"{r['median train seconds'] / mas[r['K']]:.1f}" if r["K"] in mas else "" for r in rows
        ]
    return df


def timings_markdown(res: Path | None = None) -> str:
    """The measured times (results/timings.csv, results/data_build.csv) and the training time of the runs the last
    batch reused, as one markdown table."""
    res = res or results_root()
    timings = ["| what | command | seconds | machine | date |", "|---|---|---|---|---|"]
    if (res / "timings.csv").exists():
        for r in pd.read_csv(res / "timings.csv", keep_default_na=False).itertuples():
            timings.append(
                f"| {r.what} | `{r.command}` | {float(r.seconds):.0f} | {r.machine} | {getattr(r, 'date', '')} |"
            )
    if (res / "data_build.csv").exists():  # written by `bimodal data build` itself
        for r in pd.read_csv(res / "data_build.csv").itertuples():
            timings.append(
                f"| build {r.what} data ({r.clips} clips, {r.megabytes:.0f} MB) | `bimodal data build "
                f"--profile {r.profile} --what {r.what}` | {r.seconds:.0f} | | {str(r.when)[:10]} |"
            )
    for path in sorted(res.glob("*_batch_runs.csv")):  # written by `bimodal reproduce`
        runs = pd.read_csv(path)
        reused = runs[~runs["trained_in_batch"].astype(bool)]
        if len(reused):
            profile = path.name.removesuffix("_batch_runs.csv")
            timings.append(
                f"| training of the {len(reused)} of {len(runs)} runs that the last {profile} batch reused "
                f"from `runs/` (the sum of their logged training times; a fresh machine trains them "
                f"inside the batch; `results/{path.name}`) | `make reproduce` | "
                f"{reused['train_seconds'].sum():.0f} | | |"
            )
    if len(timings) == 2:
        return "No timings measured yet (`results/timings.csv`)."
    return "\n".join(timings)


def _quick_setting() -> str:
    """What "here" means in the quick profile, read from its config (never typed)."""
    from bimodal.config import get_config

    cfg = get_config("quick")
    d, t = cfg.data, cfg.train
    return (
        f"the quick profile: a small U-Net (`results/benchmark_unet.md`) on {d.segment_samples / d.sample_rate:.0f} s "
        f"excerpts at {d.sample_rate:,} Hz, trained for {t.epochs} epochs of {d.train_items_per_epoch} "
        f"mixtures-of-mixtures, with the shipped CLAP-surrogate as the joint embedding"
    )


def results_document(res: Path | None = None) -> str:
    """docs/RESULTS.md: every table of results/ (paper beside here), the headline claims, the zero-shot scores of
    the joint embedding, the benchmarks and the timings, each read from its results file."""
    from bimodal.experiments import claims
    from bimodal.experiments.tables import TABLES

    res = res or results_root()
    rel = "../results"
    parts = [
        "# Results",
        "",
        "<!-- generated by `bimodal report` from results/; edit the code or rerun it, not this file -->",
        "",
        f"Every number here is read from `results/` (tidy CSV per table: `row, column, paper, here_mean, "
        f'here_std, n_seeds, profile, run_ids, status`). "here" is the mean ± std over seeds (n in brackets) '
        f"of the SDR in dB on the 2-source test set of SynthMUSIC-21, in {_quick_setting()}. It is not the "
        f'paper\'s setting, so compare orderings, not absolute values. A cell says "not run" and why when it '
        f"has no run; a table whose runs used L_CNT names the weights that scored it. Which runs the last "
        f"batch trained and which it reused: [`results/quick_batch_runs.csv`]({rel}/quick_batch_runs.csv). "
        f"What the numbers show: [FINDINGS.md](FINDINGS.md).",
        "",
    ]
    toc: list[str] = []
    sections: list[str] = []

    def add(title: str, body: str, level: int = 2) -> None:
        anchor = "".join(ch for ch in title.lower().replace(" ", "-") if ch.isalnum() or ch in "-_")
        if level == 2:
            toc.append(f"- [{title}](#{anchor})")
        sections.extend(["#" * level + " " + title, "", body.strip(), ""])

    add(
        "The paper's headline claims",
        claims.render(res) + "\n\nEach claim reads cells of the collected tables "
        'below by their keys (`bimodal/experiments/claims.py`); "± 1 std apart" asks whether the ordering still '
        "holds with each side moved one standard deviation toward the other.",
    )
    runs = headline_runs(res)
    if not runs.empty:
        add(
            "The headline runs: best epoch and cost",
            "The recorded runs of the headline configs (`results/runs/`, one JSON per run: its summary and config), "
            "read by `bimodal.experiments.report.headline_runs`. A best validation epoch equal to the last means "
            "the run was still improving when its epochs ended. Training seconds are wall-clock on the machine that "
            'trained the run (its record names the execution; the tables\' "Trained on:" lines say which rows come '
            "from which machine), with the batch's other process beside it: a ratio across machines is rough. "
            "Training L_CNT (per seed, the mean over the last epoch's steps) "
            "is to be read against what the teacher charges the clean sources at the same K "
            "(`results/cnt_reference.csv`, below): lower than that, the run is charged less than a perfect "
            "separator would be.\n\n" + _df_markdown(runs),
        )
    declared = [t for t in TABLES if (res / f"{t}.md").exists()]
    is_paper = lambda t: re.match(r"(table|figure)\d", t) is not None  # noqa: E731  (table1, figure1, ...)
    ordered = [t for t in PAPER_ORDER + ADDED_ORDER if t in declared] + [
        t for t in declared if t not in PAPER_ORDER + ADDED_ORDER
    ]
    for group, ids in (
        ("The paper's tables", [t for t in ordered if is_paper(t)]),
        ("Tables this repository adds (not in the paper)", [t for t in ordered if not is_paper(t)]),
    ):
        if not ids:
            continue
        body = []
        for t in ids:
            detail = f"Data: [`results/{t}.csv`]({rel}/{t}.csv)"
            if (res / f"{t}_metrics.csv").exists():
                detail += f"; every metric (SDR, SIR, SAR, SI-SDR): [`results/{t}_metrics.csv`]({rel}/{t}_metrics.csv)"
            body += [_shift_headings((res / f"{t}.md").read_text()), "", detail + ".", ""]
        add(group, "\n".join(body))
    covered = {f"{t}.md" for t in declared}
    from bimodal.embedding import ASSET

    default_md = f"embedding_zeroshot_{ASSET.stem}"
    zero_shot = sorted(res.glob("embedding_zeroshot*.md"), key=lambda p: (p.stem != default_md, p.stem))
    if zero_shot:
        body = [
            "Zero-shot classification of SynthMUSIC-21 test clips (a SoundFont and melodies the surrogate never "
            "heard) by each shipped surrogate (`bimodal embedding eval`); the weights: "
            "[`bimodal/assets/INDEX.md`](../bimodal/assets/INDEX.md).",
            "",
        ]
        for path in zero_shot:
            name = path.stem.removeprefix("embedding_zeroshot").removeprefix("_") or "surrogate"
            name += " (the default)" if path.stem == default_md else ""
            body += [_shift_headings(path.read_text(), title=f"Zero-shot scores: {name}"), ""]
            covered.add(path.name)
        add("The joint embedding", "\n".join(body))
    others = [
        p
        for p in sorted(res.glob("*.csv"))
        if not p.name.endswith(NOT_TABLES)
        and "_per_class" not in p.name
        and BATCH_COST not in p.name
        and not p.with_suffix(".md").exists()
    ]
    if others:
        body = []
        for path in others:
            title = CSV_TITLES.get(path.stem, path.stem)
            body += [
                f"### {title}",
                "",
                _csv_markdown(path),
                "",
                f"Data: [`results/{path.name}`]({rel}/{path.name}).",
                "",
            ]
        add("Other results", "\n".join(body))
    benchmarks = sorted(res.glob("benchmark_*.md"))
    covered |= {p.name for p in benchmarks}
    rest = [p for p in sorted(res.glob("*.md")) if p.name not in covered]
    if benchmarks or rest:
        add(
            "Benchmarks" if not rest else "Benchmarks and other tables",
            "Speed measurements (`make benchmarks`); never timed assertions in tests.\n\n"
            + "\n\n".join(_shift_headings(p.read_text()) for p in benchmarks + rest),
        )
    add(
        "Timings",
        "Wall-clock times measured by `make setup`, `make test`, `make reproduce` and `bimodal data "
        "build` (recorded in `outputs/`, published to `results/` by `bimodal report --adopt-timings`).\n\n"
        + timings_markdown(res)
        + "".join(
            f"\n\n### Estimated training cost of the {path.stem.split(BATCH_COST)[0]} batch, cells="
            f"'{path.stem.split(BATCH_COST)[1]}'\n\nPlanned runs priced by the median training time of the finished "
            f"runs of their kind on this machine (`bimodal tables --cost`).\n\n{_csv_markdown(path)}"
            for path in sorted(res.glob(f"*{BATCH_COST}*.csv"))
        ),
    )
    return "\n".join(parts + ["## Contents", "", *toc, ""] + sections).rstrip() + "\n"


@dataclass(frozen=True)
class Choice:
    """A choice where the paper and the authors' code differ (or where one is silent). `field` is the config field
    that selects it ("" = fixed here); `values` describes each value of the field ("_": a callable for numbers; a
    value's label may be a callable of the config)."""

    topic: str
    paper: str
    code: str
    field: str = ""
    values: dict | None = None
    fixed: str = ""  # what this repository does when no field selects it


CHOICES = (
    Choice(
        "STFT",
        "window 1024, hop 256 (Appendix E.2)",
        "n_fft 1022, hop 256 (512 bins survive 7 halvings)",
        "model.n_fft",
        {"_": lambda v, cfg: f"n_fft {v}, hop {cfg.model.hop}"},
    ),
    Choice(
        "single-source branch input",
        "each component mixture (Algorithm 1, eq. 5)",
        "the mixture of mixtures",
        "train.single_source_input",
        {"component": "each component mixture", "mom": "the mixture of mixtures"},
    ),
    Choice(
        "loss weights (eq. 6)",
        "α 0.1, β 5, γ 10 (Table 9, best row)",
        "α 0.5, β 5, γ 5",
        "train.alpha, train.beta, train.gamma",
        {"_": lambda v, cfg: f"α {cfg.train.alpha:g}, β {cfg.train.beta:g}, γ {cfg.train.gamma:g}"},
    ),
    Choice(
        "semi-supervised weights (eq. 7)",
        "λ_s 5, λ_u 1 (Table 9, best row)",
        "not implemented",
        "train.lambda_s, train.lambda_u",
        {"_": lambda v, cfg: f"λ_s {cfg.train.lambda_s:g}, λ_u {cfg.train.lambda_u:g}"},
    ),
    Choice(
        "reconstruction losses",
        "ℓ1 on waveforms (eqs. 2, 5)",
        "weighted ℓ1 on magnitudes, weight clamp(log1p(\\|X\\|), 1e-3, 10)",
        "train.loss_domain",
        {"magnitude": "weighted ℓ1 on magnitudes (as the code)", "waveform": "ℓ1 on waveforms (as the paper)"},
    ),
    Choice(
        "L_CNT directions",
        "audio→text and text→audio, over 2K (eq. 3)",
        "audio→text only",
        fixed="audio→text and text→audio, over 2K",
    ),
    Choice(
        "L_CNT, the same prompt twice in a batch",
        "a negative (eq. 3 read literally)",
        "a negative",
        "train.cnt_same_prompt_negatives",
        {False: "left out of each other's candidates", True: "a negative"},
    ),
    Choice(
        "L_CNT negatives under DDP",
        "–",
        "per GPU, not gathered",
        "train.gather_negatives",
        {True: "gathered across processes", False: "per process"},
    ),
    Choice(
        "target scaling",
        "–",
        "sources divided twice in place: targets sum to mix/K",
        fixed="sources scaled once by 1/(N·K): targets sum to the mixture",
    ),
    Choice(
        "cross-attention padding",
        "–",
        "no key padding mask",
        "model.ca_key_padding_mask",
        {True: "key padding mask", False: "no key padding mask"},
    ),
    Choice(
        "attention and the encoder",
        "–",
        "modulated features also feed the deeper levels",
        "model.attn_on_down_path",
        {
            False: "modulated features feed the skip connection only",
            True: "modulated features also feed the deeper levels",
        },
    ),
    Choice("model selection", "–", "best test SDR", fixed="best validation SDR; the test set is read once, at the end"),
    Choice(
        "SDR aggregation",
        "mean SDR",
        "mean of per-batch means; silent mixtures (Σ\\|x\\| ≤ 1e-5) skipped",
        fixed="mean over test mixtures; silent mixtures skipped and counted",
    ),
    Choice(
        "joint embedding",
        "LAION-CLAP",
        "LAION-CLAP music_audioset_epoch_15_esc_90.14",
        "embedding.backend",
        {
            "surrogate": lambda cfg: f"the shipped CLAP-surrogate `{cfg.embedding.checkpoint or _default_surrogate()}`",
            "laion_clap": "LAION-CLAP from a local checkpoint",
        },
    ),
)


def _default_surrogate() -> str:
    from bimodal.embedding import ASSET

    return ASSET.stem


def _choice_here(c: Choice, cfg) -> tuple[str, object]:
    first = c.field.split(",")[0].strip()
    section, name = first.split(".")
    value = getattr(getattr(cfg, section), name)
    values = c.values or {}
    if "_" in values:
        return values["_"](value, cfg), value
    label = values.get(value, str(value))
    return (label(cfg) if callable(label) else label), value  # a callable: a label that depends on the config


def choices_markdown(profile: str = "paper", other: str = "quick", overrides: dict | None = None) -> str:
    """The paper-vs-code choices as a markdown table, "here" read from the profile's config (never typed; with
    `overrides` applied to both profiles), and a line naming the choices on which the `other` profile differs."""
    from bimodal.config import get_config

    cfg, alt = get_config(profile, overrides), get_config(other, overrides)
    lines = [f"| topic | paper | authors' code | here ({profile} profile) | config field |", "|---|---|---|---|---|"]
    differ = []
    for c in CHOICES:
        if not c.field:
            lines.append(f"| {c.topic} | {c.paper} | {c.code} | {c.fixed} | — |")
            continue
        here, value = _choice_here(c, cfg)
        field = ", ".join(f"`{f.strip()}`" for f in c.field.split(","))
        others = [k for k in (c.values or {}) if k != "_" and k != value]
        if others:
            field += " (" + " / ".join(f"`{str(k).lower()}`" for k in [value, *others]) + ")"
        lines.append(f"| {c.topic} | {c.paper} | {c.code} | {here} | {field} |")
        alt_here, _ = _choice_here(c, alt)
        if alt_here != here:
            differ.append(f"{c.topic}: {alt_here}")
    if differ:
        lines += ["", f"The {other} profile differs in: " + "; ".join(differ) + "."]
    return "\n".join(lines)


def readme_sections(res: Path | None = None) -> dict[str, str]:
    """The README's generated sections: the headline claims, paper vs here, with a link to the full results; the
    choices where the paper and the authors' code differ, with this repository's defaults read from the config."""
    from bimodal.experiments import claims

    return {
        "claims": claims.render(res or results_root()) + "\n\nEvery table, paper beside here: "
        "[docs/RESULTS.md](docs/RESULTS.md); what they show: [docs/FINDINGS.md](docs/FINDINGS.md).",
        "choices": choices_markdown(),
    }


def asset_index() -> str:
    """bimodal/assets/INDEX.md: every shipped surrogate with its sha256, what uses it (the default, a table's core
    cells, or only the full sweep `cells='all'`) and how to retrain it (`bimodal embedding replay`)."""
    from bimodal.embedding import ASSET, shipped_surrogates
    from bimodal.experiments.tables import TABLES
    from bimodal.surrogate.replay import training_chain
    from bimodal.utils import file_sha256

    uses: dict[str, dict[str, set[str]]] = {}
    for table in TABLES.values():
        for cell in table.cells:
            if cell.overrides is None or cell.overrides.get("embedding.backend", "surrogate") != "surrogate":
                continue
            method, losses = cell.overrides.get("train.method", ""), cell.overrides.get("train.losses", "url+cnt+crl")
            supervised_cnt = method == "supervised" and cell.overrides.get("train.supervised_cnt_weight", 0) > 0
            if (method not in ("proposed", "semi_supervised") or "cnt" not in losses) and not supervised_cnt:
                continue  # no L_CNT: the surrogate's weights do not enter the run
            name = cell.overrides.get("embedding.checkpoint", "") or ASSET.stem
            kind = "core" if getattr(cell, "core", True) else "all"
            uses.setdefault(name, {"core": set(), "all": set()})[kind].add(table.id)
    lines = [
        "# Shipped surrogate weights",
        "",
        "<!-- generated by `bimodal report` from the files in this folder; do not edit by hand -->",
        "",
        "The CLAP-surrogates in this folder, the joint embedding that scores L_CNT offline. Each has a model card "
        "(`SURROGATE*_CARD.md`, written by `bimodal embedding ship`) with its training command, data and "
        'zero-shot scores. `embedding.checkpoint=<name>` selects one (`""` = '
        f"`{ASSET.stem}`, the default, chosen on the validation SDR of proposed runs: results/defaults.md). "
        "`bimodal embedding replay --checkpoint <name>` retrains one from the records in its file, stage by "
        "stage through its warm starts (`--dry-run` lists the stages); a run is keyed by the sha256 of the "
        "weights it used, so retrained weights train new runs.",
        "",
        "| name | file | MB | sha256 | used by | trained in stages (warm starts) |",
        "|---|---|---|---|---|---|",
    ]
    names = sorted(shipped_surrogates(), key=lambda n: (n != ASSET.stem, n))
    chains: dict[str, list[str] | str] = {}
    for name in names:
        try:
            chains[name] = [stage["file"].stem for stage in training_chain(name)]
        except (FileNotFoundError, ValueError) as exc:
            chains[name] = f"not replayable: {exc}"
    for name in names:
        path = ASSET.parent / f"{name}.pt"
        use = uses.get(name, {"core": set(), "all": set()})
        said = ["the default"] if name == ASSET.stem else []
        if use["core"]:
            said.append("core cells of " + ", ".join(sorted(use["core"])))
        # a warm-start stage of another surrogate: replaying that one reads this file's records
        later = [
            other for other, chain in chains.items() if other != name and isinstance(chain, list) and name in chain[:-1]
        ]
        if later:
            said.append(
                "a training stage of " + ", ".join(f"`{other}`" for other in later) + " (a replay reads this "
                "file's records)"
            )
        if use["all"] - use["core"]:
            said.append("`cells='all'` of " + ", ".join(sorted(use["all"] - use["core"])))
        chain = chains[name]
        chain = " → ".join(f"`{stem}`" for stem in chain) if isinstance(chain, list) else chain
        lines.append(
            f"| `{name}` | `{path.name}` | {path.stat().st_size / 1e6:.1f} | `{file_sha256(path)}` | "
            f"{'; '.join(said) or 'opt-in (`embedding.checkpoint`)'} | {chain} |"
        )
    return "\n".join(lines) + "\n"


def write_report(
    readme: str | Path = REPO_ROOT / "README.md",
    results_md: str | Path = REPO_ROOT / "docs" / "RESULTS.md",
    assets_index: str | Path | None = None,
    res: Path | None = None,
) -> list[Path]:
    """Write docs/RESULTS.md, the README's generated section and the asset index from results/ and the assets.
    Returns the files written (a file whose text is unchanged is left alone)."""
    from bimodal.embedding import ASSET

    res = res or results_root()
    readme, results_md = Path(readme), Path(results_md)
    assets_index = Path(assets_index) if assets_index else ASSET.parent / "INDEX.md"
    text = readme.read_text()
    for tag, body in readme_sections(res).items():
        text = _replace_between(text, tag, body, where=str(readme))
    written = []
    for path, body in ((readme, text), (results_md, results_document(res)), (assets_index, asset_index())):
        if not path.is_file() or path.read_text() != body:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body)
            written.append(path)
    return written


TIMING_FILES = ("timings.csv", "data_build.csv")  # measured by make setup / test / reproduce and bimodal data build


def record_timing(what: str, command: str, seconds: float) -> None:
    """Append (or replace) a measured wall-clock time in outputs/timings.csv: a measurement of this checkout, never
    a tracked file (`bimodal report --adopt-timings` publishes it to results/)."""
    import platform

    path = outputs_root() / "timings.csv"
    row = {
        "what": what,
        "command": command,
        "seconds": round(seconds, 1),
        "machine": f"{available_cpus()}-core {platform.machine()} CPU",
        "date": time.strftime("%Y-%m-%d"),
    }
    df = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=list(row))
    df = pd.concat([df[df["what"] != what], pd.DataFrame([row])], ignore_index=True)
    df.to_csv(path, index=False)


def adopt_timings() -> list[Path]:
    """Merge the measured timings of outputs/ into results/ (timings.csv: a newer row replaces the one of the same
    `what`; data_build.csv: rows appended). Returns the files written."""
    written = []
    for name in TIMING_FILES:
        new = outputs_root() / name
        if not new.is_file():
            continue
        old = results_root() / name
        df = pd.concat([pd.read_csv(old) if old.is_file() else pd.DataFrame(), pd.read_csv(new)], ignore_index=True)
        if name == "timings.csv":
            df = df.drop_duplicates("what", keep="last")
        else:
            df = df.drop_duplicates(keep="last")
        old.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(old, index=False)
        written.append(old)
    return written


def report_cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="bimodal report",
        description="write docs/RESULTS.md (every results/ table, "
        "paper beside here, and the published timings), the headline-claims section of "
        "README.md and bimodal/assets/INDEX.md from results/ and the shipped weights",
    )
    p.add_argument(
        "--time",
        nargs=3,
        metavar=("WHAT", "COMMAND", "SECONDS"),
        help="only record a measured wall-clock time in outputs/timings.csv (no tracked file is written)",
    )
    p.add_argument(
        "--adopt-timings",
        action="store_true",
        help="first merge this checkout's measured timings (outputs/timings.csv, outputs/data_build.csv) into results/",
    )
    args = p.parse_args(argv)
    if args.time:
        if args.adopt_timings:
            p.error("--time only records; run --adopt-timings separately")
        record_timing(args.time[0], args.time[1], float(args.time[2]))
        return 0
    if args.adopt_timings:
        for path in adopt_timings():
            print(f"wrote {path}")
    written = write_report()
    for path in written:
        print(f"wrote {path}")
    if not written:
        print("docs/RESULTS.md, README.md and bimodal/assets/INDEX.md are up to date")
    return 0
