"""MixIT (Wisdom et al. 2020): mixture-invariant training on mixtures of mixtures.

The unconditional U-Net has M = n_mix · k_sources outputs (as many as the MoM has sources, the number MixIT's
paper also uses for its 2×2 setting); the loss sums the outputs into the N component mixtures with the best binary
mixing matrix (permutation.mixit_loss). At test time S of the M outputs are matched to the S references
(permutation.match_outputs); the unmatched ones are dropped.
"""

from __future__ import annotations

from bimodal.baselines.permutation import mixit_loss
from bimodal.baselines.pit import UnconditionalMethod, regression_targets


class MixIT(UnconditionalMethod):
    name = "mixit"

    def n_outputs(self, cfg) -> int:
        return cfg.data.n_mix * cfg.data.k_sources

    def objective(self, obj, batch):
        out = obj.separator(batch.mom)  # [B, M, ...]
        est, tgt, weight = regression_targets(obj, out, batch.components)
        loss, _ = mixit_loss(est, tgt, weight)
        return loss, {"mixit": loss}
