"""Speed of one training step at the quick size, end to end: the fast path (bimodal.compute, the default) against the
eager reference (BIMODAL_REFERENCE_IMPL=1) in the same run, where the time goes, and what a whole run costs.

    python benchmarks/train_step.py                    # K = 2 -> results/benchmark_train_step.{csv,md}
    python benchmarks/train_step.py --k 2,3,4 --steps 4
    python benchmarks/train_step.py --threads          # also: 1 run on 2 threads vs 2 runs on 1 thread each

Times are CPU seconds of this process (time.process_time) on one torch thread unless stated, medians over
--steps steps after one warm-up step, on real batches of the quick SynthMUSIC-21 data (the same batches and initial
weights for both paths). Both paths compute the same function (tests/test_fast_path.py checks it in float64); the
loss values of the first batch are printed side by side here too.

Parts: each piece of a proposed step is timed on its own (forward + backward, same shapes as in the step), so the
parts add up to about the whole step; "coverage" says how closely. The fraction of the matmul peak counts the
U-Net's FLOPs (torch.utils.flop_counter) over its own forward+backward time, beside an fp32 2048² matmul timed in
the same run. The run estimate is epochs × (steps × step + validation) + the test evaluation, per method.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bimodal import compute  # noqa: E402
from bimodal import losses as L  # noqa: E402
from bimodal.config import get_config  # noqa: E402
from bimodal.utils import results_root, versions  # noqa: E402

PATHS = ("reference", "fast")


def cpu(fn) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up: oneDNN primitives, caches
    return statistics.median(cpu(fn) for _ in range(repeats))


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    return 2 * n**3 / min(cpu(lambda: a @ b) for _ in range(repeats)) / 1e9


class Setup:
    """Data, embedding and a seeded separator of one (method, K) at the quick size."""

    def __init__(self, method: str, k: int, batches: int):
        from bimodal.datasets import load_manifest
        from bimodal.backends import load_embedding
        from bimodal.train import Objective, _as_batch, _datasets, _loader, build_separator
        from bimodal.utils import seed_everything

        self.cfg = get_config("quick", {"train.method": method, "data.k_sources": 1 if method == "supervised" else k})
        self.embedding = load_embedding(self.cfg.embedding)
        seed_everything(0)
        self.separator = build_separator(self.cfg, self.embedding)
        self.init = {k_: v.clone() for k_, v in self.separator.state_dict().items()}
        main, _ = _datasets(self.cfg, load_manifest(self.cfg.data), 0, 1)
        loader = iter(_loader(main, self.cfg, 0, 1))
        t = time.perf_counter()
        raws = [next(loader) for _ in range(batches)]
        self.load_seconds = (time.perf_counter() - t) / batches  # wall: reading and mixing the clips
        self.batches = [_as_batch(r) for r in raws]
        self.objective = Objective(self.cfg, self.separator, self.embedding)

    def reset(self):
        self.separator.load_state_dict(self.init)
        return torch.optim.Adam(self.separator.parameters(), lr=self.cfg.train.lr)

    def warm_text(self):
        for b in self.batches:  # fill the per-prompt cache of the path in use
            self.objective._tokens(b.mixture_prompts)
            self.objective._tokens([row for sample in b.source_prompts for row in sample])
            self.objective._pooled([p for sample in b.source_prompts for row in sample for p in row])

    def step_fn(self, opt, i: list):
        def step():
            batch = self.batches[i[0] % len(self.batches)]
            i[0] += 1
            loss, _ = self.objective(batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return step


def text_encode_ms(embedding, n: int = 12) -> float:
    """CPU ms to encode one new prompt (the first time a run meets it; cached afterwards)."""
    prompts = [f"The sound mixture of violin, cello, and benchmark prompt {i} {compute.name()}" for i in range(n)]
    return cpu(lambda: embedding.embed_text(prompts)) / n * 1e3


def parts(s: Setup, repeats: int) -> dict[str, float]:
    """CPU seconds of each piece of one proposed step (forward + backward with the step's shapes)."""
    sep, emb, b = s.separator, s.embedding, s.batches[0]
    B, N, K, T = b.sources.shape
    rows = [b.source_prompts[i][n] for i in range(B) for n in range(N)]
    tok_m, mask_m = s.objective._tokens(b.mixture_prompts)
    tok_s, mask_s = s.objective._tokens(rows)
    out = {
        "text lookup (cached prompts)": median_time(
            lambda: (s.objective._tokens(b.mixture_prompts), s.objective._tokens(rows)), repeats
        )
    }
    comps = b.components.reshape(B * N, T)

    def stft():
        for w in (b.mom, comps):
            x = w.clone().requires_grad_()
            spec = sep.stft(x)
            (spec.abs().sum() + torch.view_as_real(spec).sum()).backward()

    out["STFT of the inputs (+ backward)"] = median_time(stft, repeats)
    mag_m, mag_s = sep.stft(b.mom).abs(), sep.stft(comps).abs()

    def unet(mag, tok, mask):
        def f():
            m = sep.masker(mag, tok, mask)
            (m * mag.unsqueeze(1)).mean().backward()

        return f

    out["U-Net, mix-and-separate branch (B MoMs, N prompts)"] = median_time(unet(mag_m, tok_m, mask_m), repeats)
    out["U-Net, single-source branch (B·N mixtures, K prompts)"] = median_time(unet(mag_s, tok_s, mask_s), repeats)
    spec = sep.stft(comps)
    mask = sep.masker(mag_s, tok_s, mask_s).detach()

    def istft():
        m = mask.clone().requires_grad_()
        sep.istft(spec.unsqueeze(1) * m, T).square().sum().backward()

    out["iSTFT of the single-source predictions (+ backward)"] = median_time(istft, repeats)
    wave = sep.istft(spec.unsqueeze(1) * mask, T).reshape(B * N * K, T).detach()
    logmel = emb.audio.logmel(wave).detach()

    def front():
        w = wave.clone().requires_grad_()
        emb.audio.logmel(w).sum().backward()

    out["surrogate front end: log-mel (+ backward)"] = median_time(front, repeats)

    def tower():
        x = logmel.clone().requires_grad_()
        emb.audio.encode_logmel(x).square().sum().backward()

    out["surrogate CNN + head (+ backward to its input)"] = median_time(tower, repeats)
    a = torch.nn.functional.normalize(emb.audio.encode_logmel(logmel), dim=-1).detach()
    text = s.objective._pooled([p for r in rows for p in r]).reshape(B, N, K, -1)
    mags = (mag_s.unsqueeze(1) * mask).reshape(B, N, K, *mag_s.shape[1:])
    comp_mag = mag_s.reshape(B, N, *mag_s.shape[1:])
    tgt = sep.stft(b.components).abs()
    pred_url = (mag_m.unsqueeze(1) * sep.masker(mag_m, tok_m, mask_m)).detach()

    def loss_fn():
        aa = a.clone().requires_grad_()
        mm, pu = mags.detach().clone().requires_grad_(), pred_url.clone().requires_grad_()
        total = (
            L.cnt_loss(aa.reshape(B, N, K, -1), text, emb.logit_scale)
            + L.crl_loss(mm, comp_mag, weight=L.magnitude_weight(comp_mag))
            + L.url_loss(pu, tgt, L.magnitude_weight(mag_m).unsqueeze(1))
        )
        total.backward()

    out["losses L_CNT, L_CRL, L_URL (+ backward)"] = median_time(loss_fn, repeats)
    opt = torch.optim.Adam(sep.parameters(), lr=1e-3)
    for p in sep.parameters():
        p.grad = torch.zeros_like(p)
    out["optimizer (Adam)"] = median_time(opt.step, repeats)
    sep.zero_grad(set_to_none=True)
    s.reset()
    return out


def unet_flops(s: Setup) -> float:
    """FLOPs of the step's two U-Net forward+backward passes (the masker only)."""
    from torch.utils.flop_counter import FlopCounterMode

    sep, b = s.separator, s.batches[0]
    B, N, K, T = b.sources.shape
    rows = [b.source_prompts[i][n] for i in range(B) for n in range(N)]
    tok_m, mask_m = s.objective._tokens(b.mixture_prompts)
    tok_s, mask_s = s.objective._tokens(rows)
    mag_m, mag_s = sep.stft(b.mom).abs(), sep.stft(b.components.reshape(B * N, T)).abs()
    with FlopCounterMode(display=False) as counter:
        for mag, tok, mask in ((mag_m, tok_m, mask_m), (mag_s, tok_s, mask_s)):
            m = sep.masker(mag, tok, mask)
            (m * mag.unsqueeze(1)).mean().backward()
    sep.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def step_flops(s: Setup, opt) -> float:
    """FLOPs of one whole training step (every op torch's flop counter knows: matmuls and convolutions, forward and
    backward, the frozen surrogate's included): the work any implementation of the same numbers must do."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        s.step_fn(opt, [0])()
    s.reset()
    return float(counter.get_total_flops())


def eval_seconds(s: Setup, name: str, limit: int | None) -> float:
    from bimodal.train import evaluate

    t = time.process_time()
    evaluate(s.separator, s.embedding, s.cfg, name, limit=limit)
    return time.process_time() - t


def bench(method: str, k: int, steps: int, peak: float, with_parts: bool) -> list[dict]:
    s = Setup(method, k, batches=steps + 1)
    rows, losses = [], {}
    for path in PATHS:
        with compute.reference_impl(path == "reference"):
            opt = s.reset()
            s.warm_text()
            loss, _ = s.objective(s.batches[0])
            losses[path] = float(loss)
            s.separator.zero_grad(set_to_none=True)
            step = median_time(s.step_fn(opt, [0]), steps)
            step_gflop = step_flops(s, s.reset()) / 1e9
            s.reset()
            row = {
                "method": method,
                "k": k,
                "path": path,
                "threads": torch.get_num_threads(),
                "step_cpu_s": step,
                "step_gflop": step_gflop,
                "step_floor_s": step_gflop / peak,
                "load_wall_s": s.load_seconds,
                "loss_first_batch": losses[path],
                "text_encode_ms_per_new_prompt": text_encode_ms(s.embedding),
                "val_eval_cpu_s": eval_seconds(s, "val2", None),
            }
            row["test_eval_cpu_s"] = row["val_eval_cpu_s"] * (252 / 64)  # test2 has 252 mixtures, val2 64
            if method != "supervised":
                flops = unet_flops(s)
                part = parts(s, 2) if (with_parts and method == "proposed") else {}
                unet_s = sum(v for key, v in part.items() if key.startswith("U-Net"))
                row.update(
                    {
                        "unet_gflop": flops / 1e9,
                        "unet_cpu_s": unet_s or None,
                        "unet_fraction_of_peak": (flops / 1e9 / unet_s / peak) if unet_s else None,
                        "parts": json.dumps(part) if part else "",
                    }
                )
            c = s.cfg
            steps_per_epoch = c.data.train_items_per_epoch // c.train.batch_size
            row["run_estimate_s"] = (
                c.train.epochs * (steps_per_epoch * (step + s.load_seconds) + row["val_eval_cpu_s"])
                + row["test_eval_cpu_s"]
            )
            rows.append(row)
    return rows


def threads_mode(k: int, steps: int) -> list[dict]:
    """One proposed process on 2 threads vs two concurrent single-thread processes: steps per wall second."""
    code = (
        "import sys,time,torch; sys.path.insert(0,%r); torch.set_num_threads(int(sys.argv[1]));"
        "from benchmarks.train_step import Setup; s=Setup('proposed',%d,%d); s.warm_text(); o=s.reset();"
        "f=s.step_fn(o,[0]); f(); t=time.perf_counter();"
        "[f() for _ in range(%d)]; print((time.perf_counter()-t)/%d)"
    ) % (str(Path(__file__).resolve().parent.parent), k, steps + 1, steps, steps)
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    one = float(
        subprocess.run(
            [sys.executable, "-c", code, "2"], env=env, capture_output=True, text=True, check=True
        ).stdout.split()[-1]
    )
    env["OMP_NUM_THREADS"] = "1"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, "1"], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    two = [float(p.communicate()[0].split()[-1]) for p in procs]
    return [
        {"layout": "1 run × 2 threads", "wall_s_per_step": one, "steps_per_wall_s": 1 / one},
        {
            "layout": "2 runs × 1 thread, concurrently",
            "wall_s_per_step": statistics.mean(two),
            "steps_per_wall_s": sum(1 / t for t in two),
        },
    ]


def render(rows: list[dict], threads: list[dict], peak: float, meta: str) -> str:
    import pandas as pd

    df = pd.DataFrame(rows)
    md = [
        "# One training step at the quick size: fast path vs eager reference (`benchmarks/train_step.py`)",
        "",
        meta,
        "",
        f"**Practical peak: fp32 matmul 2048² = {peak:.1f} GFLOP/s** on one thread, same run.",
        "",
    ]
    md += [
        "| method | K | path | step CPU s | speed-up | loss (1st batch) | new prompt ms | val eval s | "
        "U-Net GFLOP | U-Net % of peak | run estimate s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (method, k), g in df.groupby(["method", "k"], sort=False):
        ref = g[g.path == "reference"].iloc[0]
        for _, r in g.iterrows():
            frac = r.get("unet_fraction_of_peak")
            md.append(
                f"| {method} | {k} | {r.path} | {r.step_cpu_s:.3f} | {ref.step_cpu_s / r.step_cpu_s:.2f}× | "
                f"{r.loss_first_batch:.6g} | {r.text_encode_ms_per_new_prompt:.1f} | {r.val_eval_cpu_s:.2f} | "
                f"{r.get('unet_gflop', float('nan')):.1f} | "
                f"{'' if frac is None or frac != frac else f'{100 * frac:.0f} %'} | {r.run_estimate_s:.0f} |"
            )
    fast = df[df.path == "fast"].set_index(["method", "k"])
    md += ["", "### Run cost, proposed vs mix-and-separate (fast path, estimate)", ""]
    for k in sorted(df.k.unique()):
        if ("proposed", k) in fast.index and ("mix_and_separate", k) in fast.index:
            p, m = fast.loc[("proposed", k)], fast.loc[("mix_and_separate", k)]
            md.append(
                f"- K = {k}: proposed {p.run_estimate_s:.0f} s, mix-and-separate {m.run_estimate_s:.0f} s: "
                f"{p.run_estimate_s / m.run_estimate_s:.2f}× (steps alone: {p.step_cpu_s / m.step_cpu_s:.2f}×)"
            )
    for path in PATHS:
        sub = df[(df.path == path) & (df.method == "proposed") & (df.get("parts", "") != "")]
        if not len(sub):
            continue
        r = sub.iloc[0]
        part = json.loads(r.parts)
        total = sum(part.values())
        md += [
            "",
            f"### Where a proposed step's time goes (K = {r.k}, {path} path)",
            "",
            "| part | CPU s | share |",
            "|---|---|---|",
        ]
        md += [f"| {name} | {v:.3f} | {100 * v / total:.0f} % |" for name, v in part.items()]
        md.append(f"| data loading (wall, per batch) | {r.load_wall_s:.3f} | |")
        md.append(
            f"\nSum of parts {total:.3f} s against the measured step {r.step_cpu_s:.3f} s (coverage "
            f"{100 * total / r.step_cpu_s:.0f} %)."
        )
    md += [
        "",
        "### What bounds the step",
        "",
        "The floor is the step's FLOPs (matmuls and convolutions, forward and backward, counted by "
        "torch.utils.flop_counter) at the same-run matmul peak: no implementation computing the same numbers "
        "on this core is faster. The largest speed-up over the reference that the floor allows is reference "
        "step / floor.",
        "",
        "| method | K | path | step GFLOP | floor s | step s | step / floor | reference / floor (max speed-up) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (method, k), g in df.groupby(["method", "k"], sort=False):
        ref = g[g.path == "reference"].iloc[0]
        for _, r in g.iterrows():
            md.append(
                f"| {method} | {k} | {r.path} | {r.step_gflop:.1f} | {r.step_floor_s:.3f} | "
                f"{r.step_cpu_s:.3f} | {r.step_cpu_s / r.step_floor_s:.2f} | "
                f"{ref.step_cpu_s / r.step_floor_s:.2f}× |"
            )
    if threads:
        md += [
            "",
            "### Both cores: one run on two threads vs two runs side by side (fast path, proposed)",
            "",
            "| layout | wall s per step | steps per wall second |",
            "|---|---|---|",
        ]
        md += [f"| {t['layout']} | {t['wall_s_per_step']:.3f} | {t['steps_per_wall_s']:.2f} |" for t in threads]
    return "\n".join(md) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k", default="2", help="comma-separated K values (sources per training mixture)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per path (after one warm-up)")
    ap.add_argument("--methods", default="proposed,mix_and_separate")
    ap.add_argument("--threads", action="store_true", help="also measure 1×2 threads vs 2×1 thread (wall clock)")
    ap.add_argument("--no-parts", action="store_true", help="skip the per-part breakdown")
    ap.add_argument("--out", default=str(results_root()), help="folder for benchmark_train_step.csv/.md")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    peak = matmul_gflops()
    load = os.getloadavg()[0]
    rows = []
    for k in [int(x) for x in args.k.split(",")]:
        for method in args.methods.split(","):
            rows += bench(method, k, args.steps, peak, not args.no_parts and k == int(args.k.split(",")[0]))
            print(json.dumps({key: v for key, v in rows[-1].items() if key != "parts"}), flush=True)
    threads = threads_mode(int(args.k.split(",")[0]), args.steps) if args.threads else []
    v = versions()
    meta = (
        f"Generated by `python benchmarks/train_step.py {' '.join(argv or sys.argv[1:])}` on {platform.machine()} "
        f"({os.cpu_count()} cores), torch {torch.__version__}, commit {v.get('bimodal_commit', '?')}. Load average "
        f"{load:.2f} at start, {os.getloadavg()[0]:.2f} at end (times are process CPU time on one thread, so "
        f"other jobs hardly change them; the two-core table is wall clock)."
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import pandas as pd

    pd.DataFrame(rows).to_csv(out / "benchmark_train_step.csv", index=False, float_format="%.5g")
    (out / "benchmark_train_step.md").write_text(render(rows, threads, peak, meta))
    print(f"wrote {out / 'benchmark_train_step.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
