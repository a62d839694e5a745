"""The surrogate's training losses: symmetric soft-target InfoNCE (CLAP's loss with multiple positives), SigLIP's
pairwise sigmoid loss, and the mixture additivity loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def additivity_loss(audio: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """1 − cos(ε_A(a + b), normalise(ε_A(a) + ε_A(b))), averaged over the mixtures; the singles' side is detached.

    audio [B, D] L2-normalised with the M mixtures last, pairs [M, 2] indices of their singles. A dense target that
    teaches a mixture to sit between its sources (the soft audio→text target alone fits mixtures slowly)."""
    if pairs.numel() == 0:
        return audio.new_zeros(())
    mixes = audio[audio.shape[0] - pairs.shape[0] :]
    target = F.normalize(audio[pairs[:, 0]].detach() + audio[pairs[:, 1]].detach(), dim=-1)
    return (1 - (mixes * target).sum(-1)).mean()


def soft_infonce(
    audio: torch.Tensor, text: torch.Tensor, targets: torch.Tensor, single: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """Symmetric InfoNCE with soft / multiple positives.

    audio [B, D], text [U, D] (both L2-normalised), targets [B, U] (rows sum to 1), single [B] bool (items that are
    text→audio positives of their label), logit_scale = 1/τ (scalar tensor). Returns the mean of the audio→text and
    text→audio cross-entropies; labels without a single-source item are left out of the text→audio term."""
    logits = logit_scale * audio @ text.T  # [B, U]
    a2t = -(targets * F.log_softmax(logits, dim=1)).sum(1).mean()
    is_single = single.unsqueeze(1).to(targets.dtype)
    pos = (targets * is_single).T  # [U, B]
    has = pos.sum(1) > 0
    if not bool(has.any()):
        return a2t
    pos = pos[has] / pos[has].sum(1, keepdim=True)
    # a mixture that contains label u is neither a positive nor a negative of u's text: leave it out of that row
    # (as a negative it would push mixtures away from the labels they contain)
    excluded = ((targets * (1 - is_single)) > 0).T[has]  # [U', B]
    t2a_logits = logits.T[has].masked_fill(excluded, float("-inf"))
    t2a = -(pos * F.log_softmax(t2a_logits, dim=1).masked_fill(excluded, 0.0)).sum(1).mean()
    return 0.5 * (a2t + t2a)


def sigmoid_multilabel(
    audio: torch.Tensor, text: torch.Tensor, targets: torch.Tensor, logit_scale: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """SigLIP's pairwise logistic loss with multiple positives: every (item, label) pair is a binary decision.

    audio [B, D], text [U, D] (both L2-normalised), targets [B, U] (> 0 where the item contains the label),
    logit_scale and bias scalar tensors. Returns −(1/B) Σ_i Σ_u log σ(y_iu (scale·cos_iu + bias)), y = ±1. Unlike
    the softmax, a mixture is a full positive of each of its labels, so it is pushed above every absent label."""
    logits = logit_scale * audio @ text.T + bias
    sign = torch.where(targets > 0, 1.0, -1.0).to(logits.dtype)
    return F.softplus(-sign * logits).sum(1).mean()
