"""Permutation- and mixture-invariant objectives (PIT, MixIT) and the test-time matching of unconditional outputs.

The searches are asteroid's (PITLossWrapper, MixITLossWrapper, well kept and tested upstream); what this module adds
is the distance they search with: the engine's (weighted) ℓ1 — on |STFT| magnitudes weighted by
magnitude_weight(|MoM|) in the default magnitude domain, plain ℓ1 on waveforms in the waveform domain — so that
PIT, MixPIT and MixIT are trained with the same reconstruction distance as L_URL (the cited papers use negative
SI-SNR / SNR on waveforms; docs/baselines.md).

Shapes: B batch, S sources or outputs, N mixtures, ``...`` = [F, T'] magnitudes or [T] waveforms.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def pairwise_l1(est: Tensor, targets: Tensor, weight: Tensor | None = None) -> Tensor:
    """est [B, S, ...], targets [B, S', ...], weight broadcastable to [B, 1, ...] or None
    → [B, S, S'] with [b, i, j] = mean(w·|est_i − target_j|) (asteroid's pair-wise orientation: est, target)."""
    if est.shape[0] != targets.shape[0] or est.shape[2:] != targets.shape[2:]:
        raise ValueError(
            f"pairwise_l1: estimates {tuple(est.shape)} and targets {tuple(targets.shape)} must be "
            f"[B, S, ...] with the same B and trailing shape"
        )
    err = (est.unsqueeze(2) - targets.unsqueeze(1)).abs()  # [B, S, S', ...]
    if weight is not None:
        err = err * weight.unsqueeze(1)
    return err.flatten(3).mean(-1)


def mixture_l1(est_mixtures: Tensor, mixtures: Tensor, weight: Tensor | None = None) -> Tensor:
    """est_mixtures, mixtures [B, N, ...] → [B]: Σ_n mean(w·|est_n − mixture_n|) (L_URL's per-MoM value)."""
    err = (est_mixtures - mixtures).abs()
    if weight is not None:
        err = err * weight
    return err.flatten(2).mean(-1).sum(1)


def pit_loss(est: Tensor, targets: Tensor, weight: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Permutation-invariant ℓ1 (Yu et al. 2017). est, targets [B, S, ...]; weight [B, 1, ...] or None.

    Returns (loss, reordered): loss = mean over the batch of min over permutations π of Σ_s ℓ1(est_π(s), target_s)
    (summed over sources like L_URL; asteroid averages, we multiply back by S), reordered [B, S, ...] = est in the
    best order. The gradient flows through the best permutation only.
    """
    from asteroid.losses import PITLossWrapper

    if est.shape != targets.shape:
        raise ValueError(f"pit_loss: estimates {tuple(est.shape)} and targets {tuple(targets.shape)} differ")
    wrapper = PITLossWrapper(pairwise_l1, pit_from="pw_mtx")
    loss, reordered = wrapper(est, targets, return_est=True, weight=weight)
    return loss * est.shape[1], reordered


def mixit_loss(est: Tensor, mixtures: Tensor, weight: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Mixture-invariant ℓ1 (Wisdom et al. 2020). est [B, M, ...] the M outputs; mixtures [B, N, ...] the MoM's
    component mixtures; weight [B, 1, ...] or None.

    Every output goes to exactly one mixture (a binary mixing matrix A ∈ {0,1}^{N×M} with one 1 per column; N = 2
    allows every one of the 2^M matrices, an empty mixture included, as MixIT's paper; other N use asteroid's
    equal-size partitions). Returns (loss, est_mixtures): loss = mean over the batch of min_A Σ_n ℓ1((A·est)_n,
    mixture_n); est_mixtures [B, N, ...] = A·est for the best A. The search runs without gradient (all 2^M
    candidate graphs would otherwise be kept); the loss is then recomputed with gradient at the best A.
    """
    from asteroid.losses import MixITLossWrapper

    if est.shape[0] != mixtures.shape[0] or est.shape[2:] != mixtures.shape[2:]:
        raise ValueError(
            f"mixit_loss: outputs {tuple(est.shape)} and mixtures {tuple(mixtures.shape)} must be "
            f"[B, M, ...] and [B, N, ...] with the same B and trailing shape"
        )
    search = (
        MixITLossWrapper.best_part_mixit_generalized if mixtures.shape[1] == 2 else MixITLossWrapper.best_part_mixit
    )
    with torch.no_grad():
        _, idx, parts = search(mixture_l1, est.detach(), mixtures, weight=weight)
    est_mixtures = MixITLossWrapper.reorder_source(est, mixtures, idx, parts)
    return mixture_l1(est_mixtures, mixtures, weight).mean(), est_mixtures


def mixing_matrix(est: Tensor, mixtures: Tensor, weight: Tensor | None = None) -> Tensor:
    """The best mixing matrix of `mixit_loss` as integers [B, M]: entry m = the mixture output m is assigned to."""
    from asteroid.losses import MixITLossWrapper

    search = (
        MixITLossWrapper.best_part_mixit_generalized if mixtures.shape[1] == 2 else MixITLossWrapper.best_part_mixit
    )
    with torch.no_grad():
        _, idx, parts = search(mixture_l1, est, mixtures, weight=weight)
    out = torch.empty(est.shape[0], est.shape[1], dtype=torch.long)
    for b, i in enumerate(idx.reshape(-1).tolist()):
        for n, members in enumerate(parts[i]):
            out[b, list(members)] = n
    return out


def match_outputs(est: Tensor, refs: Tensor) -> np.ndarray:
    """Test-time selection for unconditional separators: which output answers each reference.

    est [M, T] outputs, refs [S, T] references (waveforms) → int array [S] of output indices. The S references get
    distinct outputs maximising the total SI-SDR (scipy's linear_sum_assignment on asteroid's SI-SDR; with M > S
    the unmatched outputs are dropped, so a MixIT model's over-separation costs it). With M < S (a 2-output model
    on a 3-source test mixture) the references left over after the one-to-one part take their best output again.
    """
    from asteroid.losses import singlesrc_neg_sisdr
    from scipy.optimize import linear_sum_assignment

    M, S = est.shape[0], refs.shape[0]
    e = est.double().unsqueeze(0).expand(S, M, -1).reshape(S * M, -1)
    r = refs.double().unsqueeze(1).expand(S, M, -1).reshape(S * M, -1)
    cost = singlesrc_neg_sisdr(e, r).reshape(S, M).nan_to_num(nan=1e6, posinf=1e6).cpu().numpy()  # [S, M]
    rows, cols = linear_sum_assignment(cost)
    choice = np.full(S, -1, dtype=int)
    choice[rows] = cols
    left = choice < 0
    choice[left] = cost[left].argmin(1)
    return choice
