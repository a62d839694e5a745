"""Speed of ``embed_audio`` forward + backward (the L_CNT path of a training step), per backend.

    .venv/bin/python benchmarks/embedding.py [--threads 1] [--repeats 3] [--laion-batch 2] [--no-step] [--out results/]

Cases: the issue's batch of 32 six-second clips (65535 samples at 11,025 Hz), and the quick profile's per-step load
(batch 16 MoMs × N=2 × K=2 = 64 single-source predictions of 32767 samples). Backends: the shipped surrogate, and
LAION-CLAP HTSAT-base with random weights (same compute as the real checkpoint; a small batch, because HTSAT-base
backward on 10 s at 48 kHz needs several GB per clip batch — its per-clip time is reported). The backward pass is
the gradient w.r.t. the waveform of Σ (audio · text) over the batch, as L_CNT needs.
Writes results/benchmark_embedding.csv and .md.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # the machine is shared; must precede the numpy/torch imports

import argparse  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

import bimodal  # noqa: E402,F401  (offline environment variables)
from bimodal.utils import results_root  # noqa: E402

SR = 11025


def _f(x: float, digits: int = 2) -> str:
    return "–" if x != x else f"{x:.{digits}f}"  # NaN: not measured for this case


def time_backend(emb, batch: int, samples: int, repeats: int) -> dict:
    """Median seconds of forward and of forward+backward for `batch` clips of `samples` at 11,025 Hz."""
    gen = torch.Generator().manual_seed(0)
    text = emb.embed_text([f"The sound of class {i}" for i in range(batch)])[0]
    fwd, total = [], []
    for _ in range(repeats + 1):  # the first run warms up allocators and is dropped
        wave = (0.1 * torch.randn(batch, samples, generator=gen)).requires_grad_(True)
        t0 = time.perf_counter()
        audio = emb.embed_audio(wave, SR)
        t1 = time.perf_counter()
        (audio * text).sum().backward()
        t2 = time.perf_counter()
        assert wave.grad is not None and torch.isfinite(wave.grad).all()
        fwd.append(t1 - t0)
        total.append(t2 - t0)
    fwd, total = fwd[1:], total[1:]
    return {
        "forward_s": float(np.median(fwd)),
        "forward_backward_s": float(np.median(total)),
        "per_clip_ms": 1000 * float(np.median(total)) / batch,
    }


def time_quick_step(repeats: int) -> list[dict]:
    """Forward + backward of one quick-profile training step of the proposed objective (16 MoMs, N=2, K=2), with
    and without L_CNT: the difference is what the embedding costs inside a real step (the issue: L_CNT must not
    dominate it). Needs the quick data (`bimodal data build --profile quick`)."""
    from bimodal.config import get_config
    from bimodal.datasets.manifest import load_manifest
    from bimodal.datasets.mixtures import MixtureDataset, collate_mixtures
    from bimodal.backends import load_embedding
    from bimodal.train import Objective, _as_batch, build_separator

    rows = []
    for losses in ("url+cnt+crl", "url+crl"):
        cfg = get_config("quick", {"train.method": "proposed", "train.losses": losses})
        torch.manual_seed(0)
        emb = load_embedding(cfg.embedding)
        sep = build_separator(cfg, emb)
        ds = MixtureDataset(cfg.data, load_manifest(cfg.data), "train", seed=0, items=cfg.train.batch_size)
        ds.set_epoch(0)
        batch = _as_batch(collate_mixtures([ds[i] for i in range(cfg.train.batch_size)]))
        objective = Objective(cfg, sep, emb)
        times = []
        for _ in range(repeats + 1):
            t0 = time.perf_counter()
            loss, _ = objective(batch)
            sep.zero_grad()
            loss.backward()
            times.append(time.perf_counter() - t0)
        rows.append({"losses": losses, "step_s": float(np.median(times[1:]))})
    with_cnt, without = rows
    share = (with_cnt["step_s"] - without["step_s"]) / with_cnt["step_s"]
    return [
        {
            "backend": "surrogate, inside a quick training step",
            "case": f"proposed step, {r['losses']}",
            "batch": 64,
            "samples": 32767,
            "forward_s": float("nan"),
            "forward_backward_s": r["step_s"],
            "per_clip_ms": float("nan"),
            "cnt_share_of_step": share if r["losses"] == "url+cnt+crl" else float("nan"),
        }
        for r in rows
    ]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--laion-batch", type=int, default=2, help="0 skips LAION-CLAP")
    p.add_argument("--out", default=None)
    p.add_argument("--no-step", dest="step", action="store_false", help="skip the quick training-step case")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out) if args.out else results_root()
    rows = []

    from bimodal.config import EmbeddingConfig
    from bimodal.backends import load_embedding
    from bimodal.embedding import ASSET, SurrogateEmbedding

    sur = load_embedding(EmbeddingConfig()) if ASSET.is_file() else SurrogateEmbedding().freeze()
    for case, batch, samples in (("issue: 32 × 6 s", 32, 65535), ("quick step: 64 × 3 s", 64, 32767)):
        r = time_backend(sur, batch, samples, args.repeats)
        rows.append(
            {
                "backend": "surrogate" + ("" if ASSET.is_file() else " (random init)"),
                "case": case,
                "batch": batch,
                "samples": samples,
                **r,
            }
        )
        print(rows[-1], flush=True)
    if args.step:
        rows += time_quick_step(args.repeats)
        print(rows[-2:], flush=True)
    if args.laion_batch > 0:
        from bimodal.clap import LaionClapEmbedding, write_test_tokenizer

        with tempfile.TemporaryDirectory() as tmp:
            emb = LaionClapEmbedding(None, write_test_tokenizer(tmp), "HTSAT-base")
        r = time_backend(emb, args.laion_batch, 65535, args.repeats)
        rows.append(
            {
                "backend": "laion_clap HTSAT-base (random weights)",
                "case": f"{args.laion_batch} × 6 s",
                "batch": args.laion_batch,
                "samples": 65535,
                **r,
                "issue_case_estimate_s": r["per_clip_ms"] * 32 / 1000,
            }
        )
        print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    df["threads"] = args.threads
    df["cpu"] = platform.processor() or platform.machine()
    df["torch"] = torch.__version__
    df["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    df["when"] = time.strftime("%Y-%m-%d %H:%M")
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "benchmark_embedding.csv", index=False, float_format="%.4g")
    lines = [
        "# embed_audio forward + backward (benchmarks/embedding.py)",
        "",
        f"{args.threads} CPU thread(s) on a shared 2-core machine, median of {args.repeats} runs; "
        "backward = gradient w.r.t. the waveform.",
        "",
        "| backend | case | forward s | forward+backward s | ms per clip |",
        "|---|---|---|---|---|",
    ]
    for r in df.itertuples():
        lines.append(
            f"| {r.backend} | {r.case} | {_f(r.forward_s)} | {r.forward_backward_s:.2f} | {_f(r.per_clip_ms, 0)} |"
        )
    if "cnt_share_of_step" in df and df["cnt_share_of_step"].notna().any():
        share = float(df["cnt_share_of_step"].dropna().iloc[0])
        lines += [
            "",
            f"L_CNT (embedding forward + backward and the loss) takes {100 * share:.0f} % of a quick-profile "
            "training step of the proposed objective (step with L_URL + L_CNT + L_CRL minus step with "
            "L_URL + L_CRL, same batch and weights).",
        ]
    (out / "benchmark_embedding.md").write_text("\n".join(lines) + "\n")
    print(df.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
