"""LASS-Net (Liu et al. 2022, "Separate What You Describe"): a ResUNet whose blocks are modulated by FiLM from a
sentence embedding of the query, trained by mix-and-separate (L_URL) — or, with data.k_sources = 1, supervised.

Here: the levels, channels, STFT and mask of this project's U-Net config (model.levels, base/max_channels, n_fft,
hop), every encoder and decoder level Down/Up + one ResBlock as in bimodal.model, and before each ResBlock a FiLM
layer x·(1 + γ(e)) + β(e) with e the mean-pooled token states of the frozen text encoder (the sentence embedding
of all-MiniLM-L6-v2 with the surrogate backend; LASS-Net uses BERT's). No attention and no output gate: the last
up-convolution gives the mask's logit directly. LASS-Net's own ResUNet (Kong et al. 2021's, 6 levels, several
convolutions per block, 32 kHz audio) is not reproduced at its size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bimodal.baselines.base import BaselineMethod
from bimodal.model import Down, ResBlock, Separator, Up, channels


class FiLMResUNet(nn.Module):
    """mag [B, F, T], tokens [B, P, L, Dc], token_mask [B, P, L] → mask [B, P, F, T] in [0, 1]."""

    def __init__(self, cfg, cond_dim: int):
        super().__init__()
        ch = channels(cfg)
        L = cfg.levels
        self.levels = L
        self.bn0 = nn.BatchNorm2d(1)
        self.down = nn.ModuleList(Down(1 if i == 0 else ch[i - 1], ch[i]) for i in range(L))
        self.enc_film = nn.ModuleList(nn.Linear(cond_dim, 2 * ch[i]) for i in range(L))
        self.enc_res = nn.ModuleList(ResBlock(ch[i]) for i in range(L))
        dec_in = [ch[i] if i == L - 1 else 2 * ch[i] for i in range(L)]
        self.dec_film = nn.ModuleList(nn.Linear(cond_dim, 2 * dec_in[i]) for i in range(L))
        self.dec_res = nn.ModuleList(ResBlock(dec_in[i]) for i in range(L))
        self.up = nn.ModuleList(
            Up(dec_in[i], ch[i - 1] if i else 1, final=(i == 0), upsample_first=cfg.upsample_first) for i in range(L)
        )
        self.text_norm = nn.LayerNorm(cond_dim)
        for film in (*self.enc_film, *self.dec_film):  # start as the identity modulation
            nn.init.zeros_(film.weight)
            nn.init.zeros_(film.bias)

    @staticmethod
    def _film(x: Tensor, params: Tensor) -> Tensor:
        gamma, beta = params.chunk(2, dim=-1)  # [N, C] each
        return x * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]

    def forward(self, mag: Tensor, tokens: Tensor, token_mask: Tensor) -> Tensor:
        B, Fr, T = mag.shape
        P = tokens.shape[1]
        m = token_mask.bool().reshape(B * P, -1, 1).to(mag.dtype)
        e = (tokens.reshape(B * P, *tokens.shape[2:]).to(mag.dtype) * m).sum(1) / m.sum(1).clamp_min(1.0)
        e = self.text_norm(e)  # [B·P, Dc], the sentence embedding
        k = 2**self.levels
        x = torch.log1p(mag).unsqueeze(1)
        x = F.pad(x, (0, -T % k, 0, -Fr % k))
        x = self.bn0(x).repeat_interleave(P, 0)  # FiLM enters at the first level: every level runs per prompt
        skips = []
        for i in range(self.levels):
            x = self.enc_res[i](self._film(self.down[i](x), self.enc_film[i](e)))
            skips.append(x)
        y = None
        for i in reversed(range(self.levels)):
            h = skips[i] if y is None else torch.cat([y, skips[i]], 1)
            y = self.up[i](self.dec_res[i](self._film(h, self.dec_film[i](e))))
        return torch.sigmoid(y[:, 0, :Fr, :T]).reshape(B, P, Fr, T)


class LassNetSeparator(Separator):
    """bimodal.model.Separator (STFT, mask on the magnitude, iSTFT with the mixture phase) with FiLMResUNet as g_θ."""

    def __init__(self, cfg, cond_dim: int):
        super().__init__(cfg, cond_dim)
        self.masker = FiLMResUNet(self.cfg, self.cond_dim)


class LassNet(BaselineMethod):
    name = "lass_net"

    def build_separator(self, cfg, embedding) -> nn.Module:
        return LassNetSeparator(cfg.model, cfg.model.cond_dim or embedding.token_dim)

    def objective(self, obj, batch):
        # mix-and-separate (k_sources ≥ 2) or supervised (k_sources = 1: the components are single sources)
        url = obj.url(batch.mom, batch.components, batch.mixture_prompts)
        return url, {"url": url}
