"""What the training engine asks of a baseline method (bimodal.baselines.registry.get returns one of these)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn


class BaselineMethod:
    """Default hooks; a method overrides what differs. `objective` is required."""

    name = ""

    def build_separator(self, cfg, embedding) -> nn.Module:
        from bimodal.model import Separator

        return Separator(cfg.model, cfg.model.cond_dim or embedding.token_dim)

    def objective(self, obj, batch) -> tuple[Tensor, dict[str, Tensor]]:
        """obj: bimodal.objective.Objective (separator, embedding, helpers); batch: bimodal.objective.Batch.
        Returns (total loss, named parts to log)."""
        raise NotImplementedError

    def estimates(self, core: nn.Module, mixture: Tensor, sources: Tensor, tokens: Tensor, mask: Tensor) -> Tensor:
        """Test-time answers: mixture [b, T], sources [b, S, T] (the references, for methods that must match
        unordered outputs to them), tokens [b, S, L, Dc] / mask [b, S, L] of the queries → [b, S, T]."""
        return core(mixture, tokens, mask)["wave"]

    def load_best(self, cfg, path: Path, embedding) -> nn.Module:
        """Rebuild the separator of `cfg` and load best.pt's weights (written by Separator.save)."""
        model = self.build_separator(cfg, embedding)
        state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
        model.load_state_dict(state)
        return model
