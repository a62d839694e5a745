"""The paper's objectives (Sections 3.2–3.4, eqs. 2–7) as plain functions on tensors.

Every function here is domain-agnostic: it compares whatever tensors it is given. The training engine's default
(``train.loss_domain = "magnitude"``) feeds |STFT| magnitudes and the weight ``magnitude_weight(|STFT(MoM)|)`` for
L_URL / ``magnitude_weight(|STFT(M_n)|)`` for L_CRL, as the authors' code and Sound-of-Pixels do; ``"waveform"``
feeds time-domain signals with ``weight=None`` (plain ℓ1). Targets must be the true component sums (component
mixture = Σ of its sources, MoM = Σ of its components): we deliberately do *not* copy the authors' in-place double
scaling of the targets (official-code-notes §1.4), which makes their targets sum to mixture/P.

Shapes, with B = MoMs in the batch, N = component mixtures per MoM, K = (padded) sources per component mixture,
D = joint-embedding width and ``...`` = any trailing signal shape ([F, T] magnitudes or [T] waveforms):

- L_URL (eq. 2)   ``url_loss(pred [B, N, ...], target [B, N, ...])``: Σ over components, mean over MoMs. The
  supervised mix-and-separate loss (baseline (a) and the λ_s term of eq. 7) is the same call with single sources,
  ``url_loss(pred [B, K, ...], sources [B, K, ...])``.
- L_CRL (eq. 5)   ``crl_loss(single_pred [B, N, K, ...], component [B, N, ...], valid [B, N, K])``.
- L_CNT (eqs. 3–4) ``cnt_loss(audio_emb [B, N, K, D], text_emb [B, N, K, D], logit_scale, valid [B, N, K])``.
- L_TWL (eq. 6), L_SSL (eq. 7): weighted sums of the above (defaults Table 9a / 9d).

Each per-MoM term is averaged over the B MoMs, so eq. 6's 1/N' Σ_i is already inside the terms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "weighted_l1",
    "url_loss",
    "crl_loss",
    "cnt_loss",
    "twl_loss",
    "ssl_loss",
    "magnitude_weight",
    "gather_with_grad",
]


def _check_weight(weight: Tensor | None, like: Tensor, name: str) -> None:
    if weight is None:
        return
    try:
        shape = torch.broadcast_shapes(weight.shape, like.shape)
    except RuntimeError:
        shape = None
    # A weight that broadcasts *up* (e.g. an extra trailing dim) would silently change what "mean" averages over.
    if shape != like.shape:
        raise ValueError(
            f"{name}: weight of shape {tuple(weight.shape)} does not broadcast to the prediction shape "
            f"{tuple(like.shape)}"
        )


def weighted_l1(pred: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """mean(w · |pred − target|) over every element (plain ℓ1 when ``weight`` is None).

    pred, target: same shape [...]; weight: broadcastable to it (e.g. [B, 1, F, T] for a per-MoM weight).
    Returns a scalar. This is the SoP/authors' ``L1`` (a plain mean, not Σw|·|/Σw).
    """
    if pred.shape != target.shape:
        raise ValueError(f"weighted_l1: prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
    _check_weight(weight, pred, "weighted_l1")
    err = (pred - target).abs()
    return (err * weight).mean() if weight is not None else err.mean()


def url_loss(pred: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """Unsupervised reconstruction loss, eq. 2: Σ_n ‖f(M, T_n) − M_n‖₁ for each MoM, averaged over MoMs.

    pred:   [B, N, ...] the prediction of each component n from the MoM with its mixture prompt T_n.
    target: [B, N, ...] the component mixtures M_n (or, supervised, the single sources S_k with N → K).
    weight: broadcastable to pred, e.g. magnitude_weight(|MoM|) [B, 1, F, T]; None = plain ℓ1.
    Returns a scalar: Σ_n over components of the per-component mean(w·|p−t|), mean over the batch
    (= N · weighted_l1, the authors' Σ_n L1(pred_n, M_n, w_X)).
    """
    if pred.dim() < 2:
        raise ValueError(f"url_loss: prediction must be [B, N, ...], got shape {tuple(pred.shape)}")
    if pred.shape != target.shape:
        raise ValueError(f"url_loss: prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
    _check_weight(weight, pred, "url_loss")
    err = (pred - target).abs()
    if weight is not None:
        err = err * weight
    b, n = pred.shape[:2]
    return err.reshape(b, n, -1).mean(dim=2).sum(dim=1).mean(dim=0)


def _source_weights(valid: Tensor | None, shape: torch.Size, where: str, device, dtype) -> Tensor | None:
    """valid [B, N, K] (bool mask of real sources, or float per-source weights) -> float [B, N, K] or None."""
    if valid is None:
        return None
    if tuple(valid.shape) != tuple(shape):
        raise ValueError(
            f"{where}: valid/source weights must have shape [B, N, K] = {tuple(shape)}, got {tuple(valid.shape)}"
        )
    return valid.to(device=device, dtype=dtype)


def crl_loss(
    single_pred: Tensor, component: Tensor, valid: Tensor | None = None, weight: Tensor | None = None
) -> Tensor:
    """Consistency reconstruction loss, eq. 5: Σ_n ‖M_n − Σ_k f(M_n, T_n^k)‖₁, averaged over MoMs.

    single_pred: [B, N, K, ...] single-source predictions Ŝ_nk (padded slots may hold anything; they are masked).
    component:   [B, N, ...] the component mixtures M_n.
    valid:       [B, N, K] bool (False = padded source, left out of the sum) or float per-source weights w_nk
                 (AudioCaps-style repeats padded up to K carry 1/count, as the authors' code); None = all ones.
    weight:      broadcastable to component, e.g. magnitude_weight(|M_n|) [B, N, F, T]; None = plain ℓ1.
    Returns a scalar; 0 exactly when the (weighted) predictions sum to each component.
    """
    if single_pred.dim() < 3:
        raise ValueError(f"crl_loss: single-source predictions must be [B, N, K, ...], got {tuple(single_pred.shape)}")
    b, n, k = single_pred.shape[:3]
    if single_pred.shape[:2] + single_pred.shape[3:] != component.shape:
        raise ValueError(
            f"crl_loss: predictions {tuple(single_pred.shape)} ([B, N, K, ...]) do not match the "
            f"component mixtures {tuple(component.shape)} ([B, N, ...])"
        )
    w = _source_weights(valid, torch.Size((b, n, k)), "crl_loss", single_pred.device, single_pred.dtype)
    if w is None:
        total = single_pred.sum(dim=2)
    else:
        w = w.reshape(b, n, k, *([1] * (single_pred.dim() - 3)))
        # where() rather than a product so a padded slot holding NaN/inf cannot leak into the sum.
        total = torch.where(
            w != 0, single_pred * w, torch.zeros((), dtype=single_pred.dtype, device=single_pred.device)
        ).sum(dim=2)
    return url_loss(total, component, weight)


def cnt_loss(
    audio_emb: Tensor,
    text_emb: Tensor,
    logit_scale: float | Tensor,
    valid: Tensor | None = None,
    text_ids: Tensor | None = None,
) -> Tensor:
    """Bi-modal contrastive loss, eqs. 3–4, summed over the N components of each MoM and averaged over MoMs.

    audio_emb: [B, N, K, D] ε_A(f(M_bn, T_bnk)), the audio embeddings of the single-source predictions.
    text_emb:  [B, N, K, D] ε_L(T_bnk), the embeddings of the single-source prompts ("The sound of {source}").
    logit_scale: 1/τ (the embedding model's pretrained, fixed scale, e.g. exp(CLAP.logit_scale_a)), not its log.
    valid:     [B, N, K] bool (False = padded source, dropped from every candidate set); None = all valid.
               A float tensor is read as "weight > 0 is valid".
    text_ids:  optional [B, N, K] integer prompt ids. When given, a candidate whose prompt id equals the anchor's
               (the same class elsewhere in the batch) is removed from that anchor's candidate set, so duplicates
               are not false negatives. None (default) = eq. 3 as written and as the authors' code: duplicates are
               negatives.
    Returns a scalar.

    With P valid (b, n, k) pairs in the batch and c = logit_scale · cos(audio_i, text_j) [P, P]:
        L_CNT(M_bn) = −1/(2 K_bn) Σ_k [log softmax_j c[(bnk), j]  (audio→text, the row)
                                       + log softmax_i c[i, (bnk)]  (text→audio, the column)]
    then Σ_n, mean over b. Uninformative embeddings give N·log P; perfect, separated ones with a large scale → 0.

    Deviation from the letter of eq. 3: its candidate set {c_iajb : a ∈ 1..K_i, j, b} also ranges over the *other*
    sources a ≠ k of mixture i; read literally, the loss could not go below log K_i even for perfect embeddings.
    We take the CLIP reading the surrounding text describes — one row (audio_ik vs every text) and one column
    (text_ik vs every audio) per anchor — as the authors' code does for its (audio→text only) direction.
    """
    if audio_emb.dim() != 4 or audio_emb.shape != text_emb.shape:
        raise ValueError(
            f"cnt_loss: audio and text embeddings must both be [B, N, K, D]; got "
            f"{tuple(audio_emb.shape)} and {tuple(text_emb.shape)}"
        )
    b, n, k, d = audio_emb.shape
    if valid is None:
        mask = torch.ones(b, n, k, dtype=torch.bool, device=audio_emb.device)
    else:
        if tuple(valid.shape) != (b, n, k):
            raise ValueError(f"cnt_loss: valid must be [B, N, K] = {(b, n, k)}, got {tuple(valid.shape)}")
        mask = valid.to(audio_emb.device) if valid.dtype == torch.bool else valid.to(audio_emb.device) > 0
    flat = mask.reshape(-1)
    if not bool(flat.any()):
        # Nothing to contrast: a zero that still belongs to the graph, so backward() works.
        return audio_emb.sum() * 0.0
    a = F.normalize(audio_emb.reshape(-1, d)[flat], dim=-1)  # [P, D]
    t = F.normalize(text_emb.reshape(-1, d)[flat], dim=-1)  # [P, D]
    logits = logit_scale * (a @ t.T)  # [P, P], rows = audio anchors, columns = text anchors
    if text_ids is not None:
        if tuple(text_ids.shape) != (b, n, k):
            raise ValueError(f"cnt_loss: text_ids must be [B, N, K] = {(b, n, k)}, got {tuple(text_ids.shape)}")
        ids = text_ids.to(audio_emb.device).reshape(-1)[flat]
        same = (ids[:, None] == ids[None, :]) & ~torch.eye(len(ids), dtype=torch.bool, device=ids.device)
        logits = logits.masked_fill(same, float("-inf"))
    row = torch.log_softmax(logits, dim=1).diagonal()  # [P] audio→text
    col = torch.log_softmax(logits, dim=0).diagonal()  # [P] text→audio
    per_anchor = torch.zeros(b * n * k, dtype=row.dtype, device=row.device)
    per_anchor = per_anchor.masked_scatter(flat, -(row + col))
    per_component = per_anchor.reshape(b, n, k).sum(dim=2)  # [B, N]
    k_bn = mask.sum(dim=2).to(per_component.dtype)  # [B, N]; a component with no valid source contributes 0
    per_component = per_component / (2.0 * k_bn.clamp(min=1.0))
    return per_component.sum(dim=1).mean(dim=0)


def _as_term(x: Tensor | float | None) -> Tensor | float:
    return 0.0 if x is None else x


def twl_loss(
    l_cnt: Tensor | float | None,
    l_crl: Tensor | float | None,
    l_url: Tensor | float | None,
    alpha: float = 0.1,
    beta: float = 5.0,
    gamma: float = 10.0,
) -> Tensor:
    """Total weak-supervision loss, eq. 6: α·L_CNT + β·L_CRL + γ·L_URL (defaults Table 9a).

    Each term is a scalar already averaged over the MoMs; a term passed as None is switched off (Table 8
    ablations). Returns a scalar tensor.
    """
    terms = [(alpha, l_cnt), (beta, l_crl), (gamma, l_url)]
    if all(t is None for _, t in terms):
        raise ValueError("twl_loss: all of l_cnt, l_crl, l_url are None; at least one term is needed")
    total = sum(w * _as_term(t) for w, t in terms)
    return total if isinstance(total, Tensor) else torch.tensor(float(total))


def ssl_loss(
    l_sup_url: Tensor | float | None, l_twl: Tensor | float | None, lambda_s: float = 5.0, lambda_u: float = 1.0
) -> Tensor:
    """Semi-supervised loss, eq. 7: λ_s·L_URL(S') + λ_u·L_TWL(B') (defaults Table 9d). None switches a term off."""
    if l_sup_url is None and l_twl is None:
        raise ValueError("ssl_loss: both l_sup_url and l_twl are None")
    total = lambda_s * _as_term(l_sup_url) + lambda_u * _as_term(l_twl)
    return total if isinstance(total, Tensor) else torch.tensor(float(total))


def magnitude_weight(mix_mag: Tensor) -> Tensor:
    """clamp(log1p(|X|), 1e-3, 10): the Sound-of-Pixels / authors' ℓ1 weight, same shape as ``mix_mag``.

    Emphasises time–frequency bins where the mixture has energy. Detached: it is a weight, not something to learn
    (the mixture carries no gradient anyway).
    """
    return torch.log1p(mix_mag.detach()).clamp(1e-3, 10.0)


# --------------------------------------------------------------------------------------------------------------
# Contrastive negatives across DDP processes.
#
# Hand-written because torch.distributed.nn.functional.all_gather (and its suggested replacements in the private
# torch.distributed._functional_collectives) are deprecated; this uses only the stable all_gather / all_reduce.
# Backward = sum of every rank's gradient for the local slice (what a reduce-scatter would give).


def _all_gather_padded(x: Tensor, sizes: tuple[int, ...]) -> Tensor:
    """all_gather of [B_r, ...] slices whose B_r may differ by rank: pad to max(B_r), gather, trim, concatenate."""
    import torch.distributed as dist

    padded = x.new_zeros((max(sizes), *x.shape[1:]))
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[:s] for p, s in zip(parts, sizes)], dim=0)


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, sizes: tuple[int, ...], rank: int) -> Tensor:
        ctx.sizes, ctx.rank = sizes, rank
        return _all_gather_padded(x, sizes)

    @staticmethod
    def backward(ctx, grad: Tensor):
        import torch.distributed as dist

        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # SUM over ranks: every rank's loss depends on this rank's slice
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]], None, None


def gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` [B_local, ...] from every DDP process along dim 0 -> [Σ B_r, ...], in rank order.

    Identity when torch.distributed is not initialised (or has one process). The gradient flows back to the
    local slice from every rank's loss (summed), so if every rank computes the same global loss on the gathered
    tensors and DDP then averages gradients over W ranks, the update equals one process on the combined batch.
    Local batch sizes may differ between ranks. Non-floating tensors (e.g. the ``valid`` mask) are gathered too,
    without autograd.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    world, rank = dist.get_world_size(), dist.get_rank()
    size = torch.tensor([x.shape[0]], dtype=torch.long, device=x.device)
    all_sizes = [torch.empty_like(size) for _ in range(world)]
    dist.all_gather(all_sizes, size)
    sizes = tuple(int(s.item()) for s in all_sizes)
    if x.is_floating_point() or x.is_complex():
        return _GatherWithGrad.apply(x, sizes, rank)
    return _all_gather_padded(x, sizes)
