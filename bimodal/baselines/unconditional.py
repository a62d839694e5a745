"""The unconditional separator of PIT*, MixPIT and MixIT: this project's U-Net ("*" = our improved U-Net) with an
unconditional output head of `n_outputs` slots.

The U-Net is bimodal.model.Separator unchanged; where the conditional separator feeds the token states of a text
prompt, each output slot feeds one learned query vector (a token sequence of length 1). The slot queries enter where
the prompt would — the Modulator's cross-attention and the output gate — so the architecture, the parameter count
(plus n_outputs × cond_dim) and the compute are the conditional model's, and the slots carry no meaning until a
permutation-invariant objective gives them one. The encoder runs once per mixture; the decoder once per slot.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from bimodal.config import ModelConfig
from bimodal.model import Separator


class UnconditionalSeparator(Separator):
    """wave [B, T] → {"wave": [B, S, T], "mag": [B, S, F, T'], "mask", "mix_mag", "mix_spec"} for S = n_outputs
    unordered output slots (Separator.forward's contract with P = S)."""

    def __init__(self, cfg: ModelConfig, cond_dim: int, n_outputs: int):
        super().__init__(cfg, cond_dim)
        if n_outputs < 1:
            raise ValueError(f"UnconditionalSeparator: n_outputs must be ≥ 1, got {n_outputs}")
        self.n_outputs = int(n_outputs)
        # distinct random queries break the symmetry between the slots (identical slots would give identical masks)
        self.slots = nn.Parameter(torch.randn(self.n_outputs, 1, cond_dim))

    def forward(self, wave: Tensor, tokens: Tensor | None = None, token_mask: Tensor | None = None) -> dict:
        """Any tokens passed (the engine's evaluation passes the test prompts) are ignored: the model is
        unconditional."""
        B = wave.shape[0]
        slots = self.slots.to(wave.dtype).unsqueeze(0).expand(B, -1, -1, -1)  # [B, S, 1, Dc]
        mask = torch.ones(B, self.n_outputs, 1, dtype=torch.bool, device=wave.device)
        return super().forward(wave, slots, mask)
