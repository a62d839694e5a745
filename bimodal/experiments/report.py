"""Rendering results: a table as markdown ("paper" beside "here" in every column), and the README sections written
from results/ (never typed by hand)."""
from __future__ import annotations

import argparse
import math
import time
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
    from bimodal.surrogate.zeroshot import results_suffix

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


TIMING_FILES = ("timings.csv", "data_build.csv")  # measured by make setup / test / reproduce and bimodal data build


def record_timing(what: str, command: str, seconds: float) -> None:
    """Append (or replace) a measured wall-clock time in outputs/timings.csv: a measurement of this checkout, never
    a tracked file (`bimodal readme --adopt-timings` publishes it to results/)."""
    import platform

    path = outputs_root() / "timings.csv"
    row = {"what": what, "command": command, "seconds": round(seconds, 1),
           "machine": f"{available_cpus()}-core {platform.machine()} CPU", "date": time.strftime("%Y-%m-%d")}
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


def readme_cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bimodal readme", description="write the results/ tables and the published "
                                "timings (results/timings.csv, results/data_build.csv) into README.md")
    p.add_argument("--time", nargs=3, metavar=("WHAT", "COMMAND", "SECONDS"),
                   help="only record a measured wall-clock time in outputs/timings.csv (README.md is left alone)")
    p.add_argument("--adopt-timings", action="store_true",
                   help="first merge this checkout's measured timings (outputs/timings.csv, outputs/data_build.csv) "
                        "into results/")
    args = p.parse_args(argv)
    if args.time:
        if args.adopt_timings:
            p.error("--time only records; run --adopt-timings separately")
        record_timing(args.time[0], args.time[1], float(args.time[2]))
        return 0
    if args.adopt_timings:
        for path in adopt_timings():
            print(f"wrote {path}")
    update_readme()
    return 0
