"""Speed of the separator on this CPU, one thread: forward+backward time and achieved GFLOP/s of a training step
(FLOPs counted by torch.utils.flop_counter.FlopCounterMode) beside a plain fp32 matmul measured in the same run, the
profile of where the time goes, and the inference real-time factor of `Separator.separate` on a ≈6 s clip
(data.clip_samples = 65535 samples at 11025 Hz).

    python benchmarks/unet.py                 # quick + paper sizes -> results/benchmark_unet.{csv,md}
    python benchmarks/unet.py --candidates    # also the quick-size candidates the quick profile was chosen from

Times are CPU seconds of this process (time.process_time) with torch on one thread, so other jobs sharing the
machine slow the wall clock but hardly the numbers; wall-clock times are recorded too. The paper size is slow on a
CPU: it is timed once after one warm-up step (which is also the FLOP-counting pass).

Training step patterns (segment = data.segment_samples of the profile):
  1+K      one mixture queried with 1 + K = 3 prompts (one mixture prompt, K = 2 source prompts) in one call;
  trainer  what bimodal.train does per MoM with N = K = 2: the MoM with its N = 2 mixture prompts, then the
           N = 2 component mixtures with K = 2 source prompts each (3 encoder passes, 6 decoder passes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bimodal.config import get_config  # noqa: E402
from bimodal.model import TABLE7_PAPER_PARAMS_M, TABLE7_VARIANTS, Separator, UNetMasker, count_parameters  # noqa
from bimodal.utils import results_root, versions  # noqa: E402

# Quick-size candidates (model.* overrides on top of the quick profile). The quick profile's values are the pick.
CANDIDATES: dict[str, dict] = {
    "b16_res_upfirst": {
        "model.base_channels": 16,
        "model.max_channels": 128,
        "model.out_channels": 32,
        "model.res_blocks": 1,
        "model.upsample_first": True,
    },
    "b8_res_upfirst": {
        "model.base_channels": 8,
        "model.max_channels": 64,
        "model.out_channels": 8,
        "model.res_blocks": 1,
        "model.upsample_first": True,
    },
    "b16_res": {"model.base_channels": 16, "model.max_channels": 64, "model.out_channels": 8, "model.res_blocks": 1},
    "b8_res": {"model.base_channels": 8, "model.max_channels": 64, "model.out_channels": 8, "model.res_blocks": 1},
    "b8_nores": {"model.base_channels": 8, "model.max_channels": 64, "model.out_channels": 8, "model.res_blocks": 0},
    "b4_res": {"model.base_channels": 4, "model.max_channels": 64, "model.out_channels": 4, "model.res_blocks": 1},
    "b8_nores_upfirst": {
        "model.base_channels": 8,
        "model.max_channels": 64,
        "model.out_channels": 8,
        "model.res_blocks": 0,
        "model.upsample_first": True,
    },
}
TOKENS = {"quick": (16, 384), "paper": (77, 768)}  # (tokens per prompt, token dim): surrogate / LAION-CLAP shapes


class RandomEmbedding:
    """Stands in for the frozen text encoder (its cost is not the separator's): fixed-shape random token states."""

    def __init__(self, length: int, dim: int):
        self.length, self.token_dim = length, dim

    def embed_text(self, prompts, padding_states=False):
        n = len(prompts)
        return (
            torch.randn(n, 512),
            torch.randn(n, self.length, self.token_dim),
            torch.ones(n, self.length, dtype=torch.bool),
        )


def matmul_gflops(n: int = 2048, repeats: int = 7) -> float:
    """Best-of fp32 n×n matmul GFLOP/s: the practical peak of one core."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_cpu_time(lambda: a @ b)[0] for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _cpu_time(fn) -> tuple[float, float]:
    c, w = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c, time.perf_counter() - w


def train_step(sep: Separator, T: int, pattern: str, length: int, dim: int):
    """A closure doing one forward+backward of `pattern` on random data."""
    tok = lambda b, p: (torch.randn(b, p, length, dim), torch.ones(b, p, length, dtype=torch.bool))
    if pattern == "1+K":
        wave, (t1, m1) = torch.randn(1, T), tok(1, 3)

        def step():
            sep.zero_grad(set_to_none=True)
            out = sep(wave, t1, m1)
            (out["mag"].mean() + out["wave"].pow(2).mean()).backward()
    elif pattern == "trainer":
        mom, comps = torch.randn(1, T), torch.randn(2, T)
        (t1, m1), (t2, m2) = tok(1, 2), tok(2, 2)

        def step():
            sep.zero_grad(set_to_none=True)
            a, b = sep(mom, t1, m1), sep(comps, t2, m2)
            (a["mag"].mean() + b["mag"].mean() + b["wave"].pow(2).mean()).backward()
    else:
        raise ValueError(pattern)
    return step


def count_flops(fn) -> tuple[int, int]:
    """(all FLOPs, convolution FLOPs) of one call."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    ops = counter.get_flop_counts().get("Global", {})
    conv = sum(v for k, v in ops.items() if "convolution" in str(k))
    return counter.get_total_flops(), conv


def time_breakdown(fn) -> dict[str, float]:
    """Fraction of self CPU time in convolutions, matrix products (linear/attention) and everything else."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    groups = {"conv": 0.0, "matmul": 0.0, "other": 0.0}
    for ev in prof.key_averages():
        name = ev.key
        if name.startswith("aten::") and ("convolution" in name or name == "aten::_slow_conv2d_backward"):
            groups["conv"] += ev.self_cpu_time_total
        elif name in ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm") or "scaled_dot_product" in name:
            groups["matmul"] += ev.self_cpu_time_total
        elif name.startswith("aten::"):
            groups["other"] += ev.self_cpu_time_total
    total = sum(groups.values()) or 1.0
    return {k: v / total for k, v in groups.items()}


def _row(
    name: str,
    profile: str,
    overrides: dict,
    sep,
    measure: str,
    shape: str,
    flops: float,
    times: list,
    peak: float,
    repeats: int,
) -> dict:
    """One results row: the medians of the (CPU, wall) times and the rates they give."""
    cpu = statistics.median(t[0] for t in times)
    wall = statistics.median(t[1] for t in times)
    return {
        "name": name,
        "profile": profile,
        "overrides": json.dumps(overrides, ensure_ascii=False),
        "params": count_parameters(sep),
        "measure": measure,
        "input": shape,
        "gflop": flops / 1e9,
        "cpu_ms": cpu * 1e3,
        "wall_ms": wall * 1e3,
        "gflops_per_s": flops / cpu / 1e9,
        "fraction_of_matmul_peak": flops / cpu / 1e9 / peak,
        "rtf": float("nan"),  # set by the separation benchmark
        "repeats": repeats,
    }


def bench_train(
    name: str, profile: str, overrides: dict, pattern: str, repeats: int, peak: float, breakdown: bool
) -> dict:
    cfg = get_config(profile, overrides)
    length, dim = TOKENS[profile]
    sep = Separator(cfg.model, dim).train()
    step = train_step(sep, cfg.data.segment_samples, pattern, length, dim)
    flops, conv_flops = count_flops(step)  # also the warm-up
    times = [_cpu_time(step) for _ in range(repeats)]
    shape = f"{cfg.model.n_fft // 2 + 1}x{cfg.data.segment_samples // cfg.model.hop + 1}"
    row = _row(name, profile, overrides, sep, f"train fwd+bwd ({pattern})", shape, flops, times, peak, repeats)
    cpu = row["cpu_ms"] / 1e3
    row["conv_flop_share"] = conv_flops / flops
    if breakdown:
        row.update({f"time_{k}": v for k, v in time_breakdown(step).items()})
        # Rate of the convolution kernels alone (FLOPs / the profiler's share of the CPU time): an estimate.
        row["conv_gflops_per_s"] = conv_flops / (cpu * row["time_conv"]) / 1e9 if row["time_conv"] else float("nan")
    print(
        f"  {name:18s} {row['measure']:26s} {row['cpu_ms']:9.1f} ms  {row['gflop']:7.2f} GFLOP  "
        f"{row['gflops_per_s']:5.1f} GFLOP/s ({100 * row['fraction_of_matmul_peak']:.0f} % of matmul)",
        flush=True,
    )
    return row


def bench_rtf(name: str, profile: str, overrides: dict, repeats: int, peak: float) -> dict:
    """`separate` on one stored clip (data.clip_samples = 65535 samples ≈ 5.94 s at 11025 Hz), one prompt."""
    cfg = get_config(profile, overrides)
    length, dim = TOKENS[profile]
    sep = Separator(cfg.model, dim)
    emb = RandomEmbedding(length, dim)
    sr = cfg.data.sample_rate
    wave = torch.randn(cfg.data.clip_samples) * 0.1
    seconds = len(wave) / sr
    run = lambda: sep.separate(wave, "the sound of violin", emb)
    flops, _ = count_flops(run)
    times = [_cpu_time(run) for _ in range(repeats)]
    measure, shape = f"separate {seconds:.2f} s, 1 prompt", f"{len(wave)} samples at {sr} Hz"
    row = _row(name, profile, overrides, sep, measure, shape, flops, times, peak, repeats)
    row["rtf"] = row["cpu_ms"] / 1e3 / seconds
    print(f"  {name:18s} {row['measure']:26s} {row['cpu_ms']:9.1f} ms  RTF {row['rtf']:.3f}", flush=True)
    return row


def table7_rows() -> list[dict]:
    rows = []
    for name, overrides in TABLE7_VARIANTS.items():
        with torch.device("meta"):  # count without allocating
            n = count_parameters(UNetMasker(get_config("paper", overrides).model, 768))
        rows.append(
            {
                "variant": name,
                "res/sa/ca": "/".join(str(v) for v in overrides.values()),
                "ours_M": n / 1e6,
                "paper_M": TABLE7_PAPER_PARAMS_M[name],
                "ratio": n / 1e6 / TABLE7_PAPER_PARAMS_M[name],
            }
        )
    return rows


def _md_table(rows: list[dict], cols: list[str], fmt: dict[str, str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(format(r[c], fmt.get(c, "")) if c in r else "" for c in cols) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candidates", action="store_true", help="also time the quick-size candidates")
    ap.add_argument("--no-paper", action="store_true", help="skip the (slow) paper size")
    ap.add_argument("--repeats", type=int, default=7, help="timed repeats at the quick size")
    ap.add_argument("--out", default=str(results_root()), help="folder for benchmark_unet.csv/.md")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    load0 = os.getloadavg()
    peak = matmul_gflops()
    print(f"fp32 matmul 2048²: {peak:.1f} GFLOP/s (1 thread)", flush=True)

    for prof, (_, dim) in TOKENS.items():
        with torch.device("meta"):
            parts = Separator(get_config(prof).model, dim).parameter_summary()
        print(f"{prof} separator parameters: " + ", ".join(f"{k} {v:,}" for k, v in parts.items()), flush=True)
    rows = []
    rows.append(bench_train("quick", "quick", {}, "1+K", args.repeats, peak, True))
    rows.append(bench_train("quick", "quick", {}, "trainer", args.repeats, peak, True))
    rows.append(bench_rtf("quick", "quick", {}, max(3, args.repeats // 2), peak))
    if args.candidates:
        for name, ov in CANDIDATES.items():
            rows.append(bench_train(name, "quick", ov, "1+K", args.repeats, peak, False))
            rows.append(bench_train(name, "quick", ov, "trainer", args.repeats, peak, False))
    if not args.no_paper:
        rows.append(bench_train("paper", "paper", {}, "1+K", 1, peak, True))
        rows.append(bench_rtf("paper", "paper", {}, 1, peak))
    load1 = os.getloadavg()

    import pandas as pd

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows)
    df.insert(0, "matmul_gflops_per_s", peak)
    df.to_csv(out / "benchmark_unet.csv", index=False, float_format="%.4g")

    v = versions()
    t7 = table7_rows()
    quick_cfg, paper_cfg = get_config("quick").model, get_config("paper").model
    main_rows = [r for r in rows if r["name"] in ("quick", "paper")]
    cand_rows = [r for r in rows if r["name"] not in ("quick", "paper")]
    fmt = {
        "conv_gflops_per_s": ".1f",
        "gflop": ".2f",
        "cpu_ms": ".1f",
        "wall_ms": ".1f",
        "gflops_per_s": ".1f",
        "fraction_of_matmul_peak": ".0%",
        "rtf": ".3f",
        "params": ",",
        "time_conv": ".0%",
        "time_matmul": ".0%",
        "time_other": ".0%",
        "ours_M": ".1f",
        "paper_M": ".1f",
        "ratio": ".3f",
    }
    md = [
        "# Separator U-Net benchmark (`benchmarks/unet.py`)",
        "",
        f"Generated by `python benchmarks/unet.py{' --candidates' if args.candidates else ''}` on "
        f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores, shared), torch {torch.__version__}, "
        f"1 thread, commit {v['bimodal_commit']}. Load average {load0[0]:.2f} at start, {load1[0]:.2f} at end "
        f"(times are process CPU time, so other jobs hardly affect them).",
        "",
        f"**Practical peak: fp32 matmul 2048² = {peak:.1f} GFLOP/s** on one core, measured in the same run.",
        "",
        "## Training step (forward + backward) and inference",
        "",
        "`1+K`: one mixture, 3 prompts in one call. `trainer`: what `bimodal.train` runs per MoM (MoM with 2 "
        "prompts + 2 component mixtures with 2 prompts each). RTF = CPU time / audio duration of "
        "`Separator.separate` (text encoder excluded). time_* = share of self CPU time in convolutions, "
        "matrix products (linear layers, attention) and everything else (norms, activations, up-sampling, "
        "concatenation, STFT).",
        "",
        _md_table(
            main_rows,
            [
                "name",
                "params",
                "measure",
                "input",
                "gflop",
                "cpu_ms",
                "wall_ms",
                "gflops_per_s",
                "fraction_of_matmul_peak",
                "rtf",
                "time_conv",
                "time_matmul",
                "time_other",
                "conv_gflops_per_s",
            ],
            fmt,
        ),
        "",
        "conv_gflops_per_s = convolution FLOPs / (CPU time × time_conv): what the oneDNN convolution kernels reach "
        "alone (an estimate, the profiler adds overhead).",
        "",
        "### What limits the rate",
        "",
    ]
    for r in main_rows:
        if "time_conv" in r:
            md.append(
                f"- {r['name']} {r['measure']}: {r['gflops_per_s']:.1f} GFLOP/s = "
                f"{100 * r['fraction_of_matmul_peak']:.0f} % of the matmul peak. Convolutions are "
                f"{100 * r['conv_flop_share']:.0f} % of the FLOPs and {100 * r['time_conv']:.0f} % of the time "
                f"(≈ {r['conv_gflops_per_s']:.0f} GFLOP/s = {100 * r['conv_gflops_per_s'] / peak:.0f} % of "
                f"peak inside them); {100 * r['time_other']:.0f} % of the time goes to FLOP-free, "
                f"memory-bound work (BatchNorm, activations, bilinear up-sampling and its backward, "
                f"concatenation, layout copies, STFT/iSTFT)."
            )
    md += [
        "",
        f"quick model.*: {json.dumps({k: getattr(quick_cfg, k) for k in ('n_fft', 'hop', 'levels', 'modulator_levels', 'base_channels', 'max_channels', 'out_channels', 'res_blocks', 'sa_blocks', 'ca_blocks', 'heads', 'head_dim', 'mlp_dim', 'upsample_first')})}",
        "",
        f"paper model.*: {json.dumps({k: getattr(paper_cfg, k) for k in ('n_fft', 'hop', 'levels', 'modulator_levels', 'base_channels', 'max_channels', 'out_channels', 'res_blocks', 'sa_blocks', 'ca_blocks', 'heads', 'head_dim', 'mlp_dim', 'upsample_first')})}",
        "",
    ]
    if cand_rows:
        md += [
            "## Quick-size candidates (model.* overrides of the quick profile)",
            "",
            _md_table(
                cand_rows,
                [
                    "name",
                    "overrides",
                    "params",
                    "measure",
                    "gflop",
                    "cpu_ms",
                    "gflops_per_s",
                    "fraction_of_matmul_peak",
                ],
                fmt,
            ),
            "",
        ]
    md += ["## Parameters", ""]
    for prof, (_, dim) in TOKENS.items():
        with torch.device("meta"):
            parts = Separator(get_config(prof).model, dim).parameter_summary()
        md.append(f"- {prof} (cond_dim {dim}): " + ", ".join(f"{k} {v:,}" for k, v in parts.items()))
    md += [
        "",
        "### Table 7 variants at the paper size (cond_dim 768) vs the paper",
        "",
        _md_table(t7, ["variant", "res/sa/ca", "ours_M", "paper_M", "ratio"], fmt),
        "",
        "The paper's 81.4 M for the full model is not the sum of its own rows (30.7 + 43.6 for Res + 13.0 for "
        "SA+CA = 87.3 M); the authors' code counts ≈ 87.7 M (official-code-notes §1.2), as ours does.",
        "",
    ]
    (out / "benchmark_unet.md").write_text("\n".join(md))
    print(f"wrote {out / 'benchmark_unet.csv'} and {out / 'benchmark_unet.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
