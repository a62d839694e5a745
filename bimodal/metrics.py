"""Evaluation metrics (Appendix F): BSS-Eval v3 SDR/SIR/SAR, SI-SDR, SDRi and their summaries.

Always float64 numpy on the CPU, whatever the input: torch-mir-eval is known to return wrong values on some GPUs,
and float32 is not enough for the 512-tap distortion-filter systems.

Backend: ``fast_bss_eval`` (numpy) with the settings that reproduce ``mir_eval.separation.bss_eval_sources``
(BSS-Eval v3): 512-tap filters, no permutation search (each estimate is scored against its own reference),
no mean removal, no clamping, no diagonal loading, a direct solve rather than conjugate-gradient iterations.
It agrees with mir_eval to well under 0.01 dB (tests/test_metrics.py) and is >10x faster than torch-mir-eval on
the CPU (benchmarks/sdr.py -> results/benchmark_sdr.md).

Protocol per test mixture (official-code-notes §1.6): every source is queried separately; SDR, SIR, SAR and SI-SDR
are the mean over the S queried sources; ``sdr_mix`` scores the unprocessed mixture as the estimate of every source
and SDRi = SDR − sdr_mix. A mixture with any silent reference or estimate (Σ|x| ≤ 1e-5, the Sound-of-Pixels rule
the authors copied) is skipped and counted by the caller. Aggregation is over mixtures (not the authors' mean of
per-batch means).
"""

from __future__ import annotations

import math
from typing import Iterable

import fast_bss_eval
from fast_bss_eval.numpy.metrics import square_cosine_metrics as _square_cosine_metrics
import numpy as np
import pandas as pd
import torch

from bimodal import compute

__all__ = [
    "SILENCE_THRESHOLD",
    "METRICS",
    "bss_eval",
    "si_sdr",
    "is_silent_source",
    "evaluate_mixture",
    "summarize",
    "summarize_seeds",
]

SILENCE_THRESHOLD = 1e-5  # Σ|x| at or below this = silent (Sound of Pixels, copied by the authors)
METRICS = ("sdr", "sir", "sar", "si_sdr", "sdr_mix", "sdri")  # the per-mixture columns summarize() knows

# BSS-Eval v3 as mir_eval computes it (see the module docstring).
_MIR_EVAL_SETTINGS = dict(
    filter_length=512, use_cg_iter=None, zero_mean=False, clamp_db=None, load_diag=None, compute_permutation=False
)


def _as_2d_f64(x, name: str) -> np.ndarray:
    """ndarray or Tensor [S, T] or [T] -> contiguous float64 numpy [S, T] on the CPU."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"{name} must be [S, T] (or [T]) with T > 0 samples, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or inf")
    return np.ascontiguousarray(x)


def _ref_est(ref, est) -> tuple[np.ndarray, np.ndarray]:
    r, e = _as_2d_f64(ref, "ref"), _as_2d_f64(est, "est")
    if r.shape != e.shape:
        raise ValueError(f"ref shape {r.shape} != est shape {e.shape}: one estimate per reference, same length")
    return r, e


def bss_eval(ref, est) -> dict[str, np.ndarray]:
    """BSS-Eval v3 ``bss_eval_sources`` with mir_eval semantics (512-tap filters, no permutation search).

    ref, est: [S, T] (or [T]) ndarray or Tensor; estimate j is scored against reference j (the other references
    define the interference subspace). Returns {"sdr", "sir", "sar"}, each float64 [S] in dB.
    Raises ValueError for an all-zero reference or estimate (mir_eval refuses them too); apply the silence rule
    (``evaluate_mixture``) before calling this on network outputs.
    """
    r, e = _ref_est(ref, est)
    for name, x in (("reference", r), ("estimate", e)):
        silent = np.flatnonzero(np.abs(x).sum(axis=1) == 0)
        if silent.size:
            raise ValueError(f"bss_eval: {name} source(s) {silent.tolist()} are all zeros; BSS-Eval is undefined")
    # A ratio with a zero error term is +inf dB, silently, as mir_eval's _safe_db (e.g. the SAR of the mixture
    # taken as the estimate: it lies in the references' span, so it has no artifacts).
    with np.errstate(divide="ignore"):
        sdr, sir, sar = fast_bss_eval.bss_eval_sources(r, e, **_MIR_EVAL_SETTINGS)
    return {"sdr": np.asarray(sdr, np.float64), "sir": np.asarray(sir, np.float64), "sar": np.asarray(sar, np.float64)}


def si_sdr(ref, est) -> np.ndarray:
    """Scale-invariant SDR (Le Roux et al. 2019), float64 [S]: 10·log10(‖αs‖² / ‖αs − ŝ‖²), α = ŝᵀs / ‖s‖².

    ref, est: [S, T] (or [T]); estimate j against reference j, no permutation, no mean removal (the signals are
    scored as given, like BSS-Eval). fast_bss_eval's 1-tap bss_eval, whose SDR is exactly this formula.
    """
    r, e = _ref_est(ref, est)
    silent = np.flatnonzero(np.abs(r).sum(axis=1) == 0)
    if silent.size:
        raise ValueError(f"si_sdr: reference source(s) {silent.tolist()} are all zeros; SI-SDR is undefined")
    # Only the SDR is kept; the 1-tap SIR is +inf whenever there is a single reference, which is not a warning here.
    with np.errstate(divide="ignore", invalid="ignore"):
        out = fast_bss_eval.si_bss_eval_sources(r, e, zero_mean=False, clamp_db=None, compute_permutation=False)
    return np.asarray(out[0], np.float64)


def is_silent_source(x, threshold: float = SILENCE_THRESHOLD) -> np.ndarray:
    """Per-source silence flags, bool [S], for x [S, T] (or [T]): Σ|x| ≤ threshold (the Sound-of-Pixels rule)."""
    return np.abs(_as_2d_f64(x, "signal")).sum(axis=1) <= threshold


def _coherence_db(coh: np.ndarray) -> np.ndarray:
    """fast_bss_eval's map from a squared cosine to dB, without clamping (clamp_db=None): coh clipped to [0, 1],
    then 10·log10(coh / (1 − coh)); 1 gives +inf, as mir_eval's _safe_db."""
    coh = np.clip(coh, 0.0, 1.0)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(coh / (1.0 - coh))


def _bss_eval_with_mixture(r: np.ndarray, e: np.ndarray, mix: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``bss_eval(r, e)`` and the SDRs of the mixture taken as every source's estimate, in one pass.

    r, e: float64 [S, T]; mix: [1, T]. The distortion-filter systems depend on the references only, so scoring the
    S estimates and the mixture as S + 1 right-hand sides of fast_bss_eval's pairwise computation factorises each
    system once instead of twice (the same solves as two bss_eval calls, up to float64 rounding; checked against
    mir_eval in tests/test_metrics.py). Returns ({"sdr", "sir", "sar"} each [S], sdr_mix [S]).
    """
    with np.errstate(divide="ignore"):
        coh_sdr, coh_sar = _square_cosine_metrics(
            r,
            np.concatenate([e, mix], axis=0),
            filter_length=512,
            use_cg_iter=None,
            zero_mean=False,
            pairwise=True,
            load_diag=None,
        )
        S = r.shape[0]
        idx = np.arange(S)
        c_sdr, c_sar = coh_sdr[idx, idx], coh_sar[idx, idx]  # estimate j against reference j
        metrics = {"sdr": _coherence_db(c_sdr), "sir": _coherence_db(c_sdr / c_sar), "sar": _coherence_db(c_sar)}
        return metrics, _coherence_db(coh_sdr[idx, S])


def evaluate_mixture(refs, ests, mixture) -> dict[str, float] | None:
    """Metrics of one test mixture: means over its S queried sources, or None when it must be skipped.

    refs: [S, T] ground-truth sources; ests: [S, T] the separator's answer to each source's query; mixture: [T]
    the input mixture (the no-separation baseline). Returns None (skip — the caller counts it) when any reference
    or estimate is silent (Σ|x| ≤ 1e-5), else floats
      {"sdr", "sir", "sar", "si_sdr": mean over sources; "sdr_mix": mean SDR of the mixture taken as the estimate
       of every source; "sdri": sdr − sdr_mix; "n_sources": S}.
    """
    r, e = _ref_est(refs, ests)
    mix = _as_2d_f64(mixture, "mixture")
    if mix.shape != (1, r.shape[1]):
        raise ValueError(f"mixture must be [T] with T = {r.shape[1]} samples (as refs), got shape {mix.shape}")
    if is_silent_source(r).any() or is_silent_source(e).any():
        return None
    if compute.use_reference():
        m = bss_eval(r, e)
        sdr_mix = bss_eval(r, np.repeat(mix, r.shape[0], axis=0))["sdr"]
    else:
        m, sdr_mix = _bss_eval_with_mixture(r, e, mix)
    out = {k: float(np.mean(v)) for k, v in m.items()}
    out["si_sdr"] = float(np.mean(si_sdr(r, e)))
    out["sdr_mix"] = float(np.mean(sdr_mix))
    out["sdri"] = out["sdr"] - out["sdr_mix"]
    out["n_sources"] = int(r.shape[0])
    return out


def _finite_or_none(x: float) -> float | None:
    """JSON has no NaN/inf: an undefined statistic (e.g. the std of one value) is None."""
    return float(x) if math.isfinite(x) else None


def _stats(values: np.ndarray) -> dict:
    n = int(values.size)
    return {
        "mean": _finite_or_none(np.mean(values)) if n else None,
        "median": _finite_or_none(np.median(values)) if n else None,
        "std": _finite_or_none(np.std(values, ddof=1)) if n > 1 else None,  # sample std (ddof=1)
        "n": n,
    }


def summarize(per_mixture: pd.DataFrame, skipped: int) -> dict[str, dict]:
    """Per-metric summary of a per-mixture table (rows = evaluated mixtures, columns as evaluate_mixture).

    per_mixture: DataFrame with any of the METRICS columns (other columns are ignored); skipped: how many
    mixtures evaluate_mixture returned None for. Returns {metric: {"mean", "median", "std" (ddof=1), "n",
    "n_skipped"}} with None for a statistic that is undefined (no rows, or std of one row); JSON-ready.
    """
    if skipped < 0:
        raise ValueError(f"summarize: skipped must be ≥ 0, got {skipped}")
    cols = [c for c in METRICS if c in per_mixture.columns]
    if not cols:
        raise ValueError(
            f"summarize: the per-mixture table has none of the metric columns {METRICS}; "
            f"its columns are {list(per_mixture.columns)}"
        )
    out = {}
    for c in cols:
        values = pd.to_numeric(per_mixture[c], errors="raise").to_numpy(np.float64)
        if np.isnan(values).any():
            raise ValueError(f"summarize: column {c!r} has NaN rows; skipped mixtures belong in `skipped`")
        out[c] = {**_stats(values), "n_skipped": int(skipped)}
    return out


def summarize_seeds(summaries: Iterable[dict], stat: str = "mean") -> dict[str, dict]:
    """Across-seed summary: for each metric, mean ± std (ddof=1) and n of one statistic of the per-seed summaries.

    summaries: the ``summarize`` outputs of runs that differ only in their seed; stat: which per-seed statistic to
    aggregate ("mean" or "median"). Returns {metric: {"mean", "std", "n"}} over the metrics all seeds share.
    """
    summaries = list(summaries)
    if not summaries:
        raise ValueError("summarize_seeds: no per-seed summaries given")
    if stat not in ("mean", "median"):
        raise ValueError(f"summarize_seeds: stat must be 'mean' or 'median', got {stat!r}")
    common = [m for m in METRICS if all(m in s for s in summaries)]
    out = {}
    for m in common:
        vals = np.array([s[m][stat] for s in summaries if s[m][stat] is not None], dtype=np.float64)
        st = _stats(vals)
        out[m] = {"mean": st["mean"], "std": st["std"], "n": st["n"]}
    return out
