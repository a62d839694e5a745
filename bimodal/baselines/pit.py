"""PIT* (Yu et al. 2017) and MixPIT (Karamatlı & Kırbız 2022): one unconditional U-Net, permutation-invariant ℓ1.

PIT*: supervised; the input is a mixture of N single sources (data.k_sources = 1) and the N outputs are matched to
the sources by the best permutation. MixPIT: the input is a mixture of N mixtures (k_sources ≥ 2) and the N outputs
are matched to the component mixtures by the best permutation — the same objective on MoMs, which is all MixPIT is.
At test time the outputs are matched to the references by the best assignment (permutation.match_outputs).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from bimodal import losses as L
from bimodal.baselines.base import BaselineMethod
from bimodal.baselines.permutation import match_outputs, pit_loss


def regression_targets(obj, out: dict, targets: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
    """(estimates, targets, weight) in the engine's loss domain: waveforms and no weight, or |STFT| magnitudes and
    magnitude_weight(|MoM|) [B, 1, F, T'] as L_URL uses."""
    if obj.cfg.train.loss_domain == "waveform":
        return out["wave"], targets, None
    return out["mag"], obj._stft_mag(targets), L.magnitude_weight(out["mix_mag"]).unsqueeze(1)


class UnconditionalMethod(BaselineMethod):
    def n_outputs(self, cfg) -> int:
        return cfg.data.n_mix

    def build_separator(self, cfg, embedding) -> nn.Module:
        from bimodal.baselines.unconditional import UnconditionalSeparator

        return UnconditionalSeparator(cfg.model, cfg.model.cond_dim or embedding.token_dim, self.n_outputs(cfg))

    def estimates(self, core, mixture, sources, tokens, mask) -> Tensor:
        out = core(mixture)["wave"]  # [b, M, T], unordered
        picks = [match_outputs(out[j].cpu(), sources[j]) for j in range(out.shape[0])]
        return torch.stack([out[j, torch.as_tensor(p, device=out.device)] for j, p in enumerate(picks)])


class PIT(UnconditionalMethod):
    name = "pit"

    def objective(self, obj, batch):
        out = obj.separator(batch.mom)  # [B, N, ...]
        est, tgt, weight = regression_targets(obj, out, batch.components)
        loss, _ = pit_loss(est, tgt, weight)
        return loss, {"pit": loss}


class MixPIT(PIT):
    name = "mixpit"
