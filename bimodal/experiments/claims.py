"""The paper's headline orderings, checked against the collected results (results/<table>.csv): one line per claim,
with the paper's numbers beside ours and whether the ordering holds, and holds with the two sides ± 1 std apart.

Every number comes from a results file written by `bimodal tables` / the batch; nothing here is typed by hand but
the paper's values, which come from the table declarations (bimodal.experiments.tables).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from bimodal.utils import results_root

KS = (2, 3, 4)


@dataclass
class Value:
    mean: float | None
    std: float | None
    n: int
    paper: float | None

    @property
    def ok(self) -> bool:
        return self.mean is not None and not math.isnan(self.mean)

    def text(self) -> str:
        if not self.ok:
            return "not run"
        sd = "" if self.std is None or math.isnan(self.std) else f" ± {self.std:.1f}"
        return f"{self.mean:.1f}{sd} (n={self.n})"

    @property
    def lo(self) -> float:
        return self.mean - (0.0 if self.std is None or math.isnan(self.std) else self.std)

    @property
    def hi(self) -> float:
        return self.mean + (0.0 if self.std is None or math.isnan(self.std) else self.std)


def _load(table: str, folder=None) -> pd.DataFrame | None:
    path = (folder or results_root()) / f"{table}.csv"
    return pd.read_csv(path) if path.exists() else None


def _paper(table: str, key: str) -> float | None:
    from bimodal.experiments.tables import TABLES

    return next((c.paper for c in TABLES[table].cells if c.key == key), None)


def value(df: pd.DataFrame | None, key: str, table: str) -> Value:
    """mean, std, n of one cell of a collected table (None when it is not run), and the paper's value from the
    table's declaration."""
    paper = _paper(table, key)
    if df is None or "key" not in df or not (df["key"] == key).any():
        return Value(None, None, 0, paper)
    row = df[df["key"] == key].iloc[0]
    num = lambda v: None if pd.isna(v) else float(v)  # noqa: E731
    n = num(row.get("n_seeds"))
    return Value(num(row.get("here_mean")), num(row.get("here_std")), int(n or 0), paper)


def _verdict(a: Value, b: Value, relation) -> tuple[str, str]:
    """(holds, holds ± 1 std apart) of relation(a, b) for mean values, and of the same with a.lo vs b.hi. Where the
    claim does not hold, the second says whether the opposite ordering (b over a) is ± 1 std apart: a measured
    negative result, not a tie within the seed spread."""
    if not (a.ok and b.ok):
        return "not run", ""
    holds = relation(a.mean, b.mean)
    std_known = a.n > 1 and b.n > 1
    if not std_known:
        return ("yes" if holds else "**no**"), "n/a (1 seed)"
    if holds:
        return "yes", "yes" if relation(a.lo, b.hi) else "no"
    return "**no**", "no; the opposite is" if relation(b.lo, a.hi) else "no"


def claims(folder=None) -> list[dict]:
    """Each of the paper's orderings: {"claim", "paper", "here", "holds", "apart"}."""
    fig, t8 = _load("figure1", folder), _load("table8", folder)
    out = []
    sup = value(fig, "supervised/single", "figure1")
    gaps = {k: (value(fig, f"proposed/k{k}", "figure1"), value(fig, f"mix_and_separate/k{k}", "figure1")) for k in KS}
    for k, (p, m) in gaps.items():
        holds, apart = _verdict(p, m, lambda a, b: a > b)
        out.append(
            {
                "claim": f"proposed > mix-and-separate, K = {k} (Figure 1)",
                "paper": f"{p.paper} vs {m.paper}",
                "here": f"{p.text()} vs {m.text()}",
                "holds": holds,
                "apart": apart,
            }
        )
    gp = {k: p.paper - m.paper for k, (p, m) in gaps.items() if p.paper is not None and m.paper is not None}
    if all(p.ok and m.ok for p, m in gaps.values()):
        g = {k: p.mean - m.mean for k, (p, m) in gaps.items()}
        holds = "yes" if g[3] > g[2] and g[4] > g[2] else "**no**"
        here = ", ".join(f"{g[k]:+.1f}" for k in KS)
    else:
        holds, here = "not run", "not run"
    out.append(
        {
            "claim": "the gap (proposed − mix-and-separate) is larger at K = 3 and 4 than at K = 2",
            "paper": ", ".join(f"{gp[k]:+.1f}" for k in KS if k in gp),
            "here": f"{here} dB",
            "holds": holds,
            "apart": "",
        }
    )
    p2 = gaps[2][0]
    if p2.ok and sup.ok:
        ratio = p2.mean / sup.mean
        holds = "yes" if ratio >= 0.9 else "**no**"
        here = f"{100 * ratio:.0f} % ({p2.text()} / {sup.text()})"
    else:
        holds, here = "not run", "not run"
    paper_ratio = f"{100 * p2.paper / sup.paper:.0f} %" if p2.paper and sup.paper else ""
    out.append(
        {
            "claim": "proposed ≥ 90 % of supervised, K = 2",
            "paper": paper_ratio,
            "here": here,
            "holds": holds,
            "apart": "",
        }
    )
    semi = value(fig, "semi5/k2", "figure1")
    holds, apart = _verdict(semi, sup, lambda a, b: a > b)
    out.append(
        {
            "claim": "semi-supervised 5 % > supervised 100 %, K = 2",
            "paper": f"{semi.paper} vs {sup.paper}",
            "here": f"{semi.text()} vs {sup.text()}",
            "holds": holds,
            "apart": apart,
        }
    )
    for k in KS:
        full = value(t8, f"url_cnt_crl/k{k}", "table8")
        others = {
            name: value(t8, f"{key}/k{k}", "table8")
            for key, name in (("url", "L_URL"), ("cnt", "L_CNT"), ("crl", "L_CRL"), ("cnt_crl", "L_CNT + L_CRL"))
        }
        run = {name: v for name, v in others.items() if v.ok}
        if not full.ok or not run:
            holds, apart, here = "not run", "", "not run"
        else:
            best_name, best = max(run.items(), key=lambda kv: kv[1].mean)
            holds, apart = _verdict(full, best, lambda a, b: a > b)
            missing = [n for n, v in others.items() if not v.ok]
            here = f"{full.text()} vs best other {best_name} {best.text()}" + (
                f" ({', '.join(missing)} not run)" if missing else ""
            )
        paper_best = max((v.paper for v in others.values() if v.paper is not None), default=None)
        out.append(
            {
                "claim": f"all three losses > any fewer, K = {k} (Table 8)",
                "paper": f"{full.paper} vs {paper_best}",
                "here": here,
                "holds": holds,
                "apart": apart,
            }
        )
    out += default_choices(folder)
    return out


def default_choices(folder=None) -> list[dict]:
    """For each choice of the defaults table: does the config default have the best mean validation SDR among
    the candidates that were run? (the test column is shown, never used)."""
    from bimodal.experiments.tables import DEFAULT_CHOICES

    df, out = _load("defaults", folder), []
    for choice in dict.fromkeys(c[0] for c in DEFAULT_CHOICES):
        rows = [(label, key) for ch, label, key, _ in DEFAULT_CHOICES if ch == choice]
        val = {key: value(df, f"{key}/val2", "defaults") for _, key in rows}
        test = {key: value(df, f"{key}/test2", "defaults") for _, key in rows}
        run = {key: v for key, v in val.items() if v.ok}
        default_key = rows[0][1]
        here = "; ".join(f"{key.split('_', 1)[1]} {val[key].text()} (test {test[key].text()})" for _, key in rows)
        if default_key not in run or len(run) < 2:
            holds = "not run"
        else:
            best = max(run, key=lambda k: run[k].mean)
            holds = "yes" if best == default_key else f"**no**: {best.split('_', 1)[1]} is better on validation"
        out.append(
            {
                "claim": f"the default {choice} = {default_key.split('_', 1)[1]} has the best validation SDR",
                "paper": "",
                "here": here,
                "holds": holds,
                "apart": "",
            }
        )
    return out


def render(folder=None) -> str:
    """The claims as a markdown table (for README.md and docs/RESULTS.md)."""
    lines = ["| the paper's claim | paper | here (quick profile) | holds | ± 1 std apart |", "|---|---|---|---|---|"]
    lines += [f"| {c['claim']} | {c['paper']} | {c['here']} | {c['holds']} | {c['apart']} |" for c in claims(folder)]
    return "\n".join(lines)
