"""The separator f_θ of eq. 1 and its text-conditioned U-Net g_θ (Appendix C, Table 4, Figure 5; Table 7).

    f_θ(M, T) = iSTFT( |STFT(M)| ⊙ g_θ(|STFT(M)|, ε_L(T)), phase(STFT(M)) )

Since |S|·m·e^{iφ} = m·S, the masked spectrogram is computed as ``mask * spec`` (no division by |S|).

STFT. Hann window, hop 256, centred. ``model.n_fft`` defaults to **1022**, not the paper's 1024: 1022 gives 512
frequency bins, which survive the 7 stride-2 halvings of the U-Net (512 → 4), whereas 1024 gives 513 bins, which do
not. The authors' code uses 1022 for the same reason (Sound-of-Pixels convention). The quick and smoke profiles use
766 (384 bins): 510 would be cheaper, but with hop 256 > 510/2 the last samples of a signal fall on the edge of a
single Hann window, where the iSTFT divides by ~1e-9 (config.tail_window_weight; validate rejects it). The masker
accepts any F × T: it zero-pads the magnitude up to multiples of 2^levels and crops the mask back, so inputs of any
length work at inference; training segments are chosen so no padding is needed (config.validate checks the frames).

U-Net g_θ (channels c_i = min(base·2^(i-1), max_channels) at level i = 1..levels):

- input: log1p(|S|) → BatchNorm2d(1) (as the authors' code);
- encoder level i: Conv 4×4 stride 2 (×2 channels) → BN → LeakyReLU 0.2, then ``res_blocks`` ResBlocks
  (conv 3×3 → BN → +x → LeakyReLU 0.2, Table 4: one conv, expansion 1);
- the **Head** is the top ``levels − modulator_levels`` levels: plain skips, no conditioning;
- the **Modulator** is the bottom ``modulator_levels`` levels: their skip connections (at the innermost level, the
  bottleneck itself) carry ``sa_blocks`` self-attention and ``ca_blocks`` cross-attention blocks, interleaved
  SA, CA, SA, CA, … (pre-norm LayerNorm, MHA with heads × head_dim, MLP mlp_dim with GELU; Table 4). The paper puts
  them "in the skip connections of every Modulator layer" (App. C.1); the authors' code instead modulates the
  down path so later encoder levels see conditioned features: ``attn_on_down_path=True`` offers that;
- decoder level i: cat(up-sampled deeper features, skip_i) → ``res_blocks`` ResBlocks at 2·c_i channels →
  bilinear ×2 and a conv 3×3 compressing to c_{i−1} → BN → ReLU; the outermost conv gives ``out_channels`` maps
  with bias and no activation. The decoder ResBlock runs *before* the up-sampling (the authors' code runs it after):
  same parameters, 4× fewer FLOPs at that block. ``upsample_first`` (paper profile, the authors' order) convolves
  after up-sampling; False (quick/smoke) convolves at the lower resolution and up-samples the result: 4× fewer
  FLOPs in every up-conv, at the price of a mask that is bilinear between half-resolution points;
- output: the SoP/authors' "synthesizer": mask = sigmoid(Σ_c σ(W·pool(tokens))_c · scale_c · U_c + bias), where
  pool is the masked mean of the prompt's token states (the authors use the pooled CLAP sentence embedding; the
  contract here passes token states only). It is what conditions the Table 7 variants that have no CA block.

Cross-attention uses the token mask as key padding mask (``ca_key_padding_mask``; the authors' code has none).

Prompt sharing. The encoder levels that do not depend on the prompt run once per mixture (batch B); tensors are
expanded to B·P only where the prompt enters (the first CA block; in skip mode the whole encoder and the SA blocks
before the first CA stay at batch B). Training queries each mixture with several prompts, so this saves work.

Feature maps are kept channels-last (oneDNN convolutions and bilinear up-sampling are faster so, measured).

Parameter count at the paper profile: see ``benchmarks/unet.py`` / results/benchmark_unet.md (Table 7 beside ours).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bimodal import compute
from bimodal.config import ConfigError, ModelConfig, from_dict, tail_window_weight

# Table 7 of the paper as model.* overrides of the full model (ResBlock, SA, CA each 0, 1 or 2).
TABLE7_VARIANTS: dict[str, dict] = {
    "vanilla": {"model.res_blocks": 0, "model.sa_blocks": 0, "model.ca_blocks": 0},
    "ca": {"model.res_blocks": 0, "model.sa_blocks": 0, "model.ca_blocks": 1},
    "ca2": {"model.res_blocks": 0, "model.sa_blocks": 0, "model.ca_blocks": 2},
    "sa": {"model.res_blocks": 0, "model.sa_blocks": 1, "model.ca_blocks": 0},
    "sa2": {"model.res_blocks": 0, "model.sa_blocks": 2, "model.ca_blocks": 0},
    "res": {"model.res_blocks": 1, "model.sa_blocks": 0, "model.ca_blocks": 0},
    "res2": {"model.res_blocks": 2, "model.sa_blocks": 0, "model.ca_blocks": 0},
    "sa_ca": {"model.res_blocks": 0, "model.sa_blocks": 1, "model.ca_blocks": 1},
    "sa_ca2": {"model.res_blocks": 0, "model.sa_blocks": 2, "model.ca_blocks": 2},
    "full": {"model.res_blocks": 1, "model.sa_blocks": 1, "model.ca_blocks": 1},
}
# The paper's "Total Params (M)" column of Table 7 (a reference to compare against, not a result of ours).
TABLE7_PAPER_PARAMS_M: dict[str, float] = {
    "vanilla": 30.7,
    "ca": 37.4,
    "ca2": 44.7,
    "sa": 36.6,
    "sa2": 42.9,
    "res": 74.3,
    "res2": 118.8,
    "sa_ca": 43.7,
    "sa_ca2": 57.7,
    "full": 81.4,
}

CHECKPOINT_FORMAT = "bimodal.separator/1"


class CheckpointError(ValueError):
    """A separator checkpoint that cannot be loaded; the message names the file and the reason."""


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def channels(cfg: ModelConfig) -> list[int]:
    """Channels c_i of encoder levels i = 1..levels."""
    return [min(cfg.base_channels * 2**i, cfg.max_channels) for i in range(cfg.levels)]


# ---------------------------------------------------------------------------------------------------------------
# Building blocks


class ResBlock(nn.Module):
    """x → LeakyReLU_0.2(x + BN(conv3×3(x))) (Table 4: one conv, expansion ratio 1). [N, C, H, W] → same."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(ch)

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x + self.bn(self.conv(x)), 0.2)


class Down(nn.Module):
    """Strided conv 4×4 / 2 → BN → LeakyReLU 0.2: [N, Cin, H, W] → [N, Cout, H/2, W/2]."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(self.bn(self.conv(x)), 0.2)


class Up(nn.Module):
    """Bilinear ×2 and a conv 3×3 compressing channels, then BN → ReLU: [N, Cin, H, W] → [N, Cout, 2H, 2W].
    ``upsample_first`` (the authors' order): up-sample, then conv at the higher resolution; otherwise conv → BN → ReLU
    at the lower resolution, then up-sample (same parameters, 4× fewer conv FLOPs; the output is smoother).
    ``final``: conv with bias and no norm/activation (the U-Net output maps)."""

    def __init__(self, cin: int, cout: int, final: bool = False, upsample_first: bool = True):
        super().__init__()
        self.final, self.upsample_first = final, upsample_first
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=final)
        self.bn = None if final else nn.BatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        up = lambda z: F.interpolate(z, scale_factor=2.0, mode="bilinear", align_corners=False)
        if self.upsample_first:
            x = self.conv(up(x))
            return x if self.final else F.relu(self.bn(x))
        x = self.conv(x)
        return up(x if self.final else F.relu(self.bn(x)))


class AttentionBlock(nn.Module):
    """Pre-norm transformer block on the tokens of a feature map (one token per time-frequency cell):
    x + MHA(LN(x), K=V=x or context) then x + MLP(LN(x)) (eqs. 9, 10; Table 4).

    Hand-written around F.scaled_dot_product_attention instead of nn.MultiheadAttention because heads × head_dim
    need not equal the channel count (quick/smoke sizes), and the context has its own dimension.
    """

    def __init__(
        self,
        ch: int,
        heads: int,
        head_dim: int,
        mlp_dim: int,
        context_dim: int | None = None,
        key_padding_mask: bool = True,
    ):
        super().__init__()
        inner = heads * head_dim
        self.heads, self.head_dim = heads, head_dim
        self.cross = context_dim is not None
        self.key_padding_mask = key_padding_mask
        self.norm = nn.LayerNorm(ch)
        self.q = nn.Linear(ch, inner)
        kv_dim = context_dim if self.cross else ch
        # The context (frozen text-encoder token states) comes from different backends with different scales.
        self.context_norm = nn.LayerNorm(kv_dim) if self.cross else None
        self.k = nn.Linear(kv_dim, inner)
        self.v = nn.Linear(kv_dim, inner)
        self.o = nn.Linear(inner, ch)
        self.mlp_norm = nn.LayerNorm(ch)
        self.mlp = nn.Sequential(nn.Linear(ch, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, ch))

    def forward(self, x: Tensor, context: Tensor | None = None, context_mask: Tensor | None = None) -> Tensor:
        """x [N, C, H, W]; context [N, L, Dc]; context_mask [N, L] bool (True = real token) → [N, C, H, W]."""
        n, c, h, w = x.shape
        # [N, HW, C]: a free view of a channels-last map (the fast path keeps maps channels-last; a copy otherwise)
        t = x.flatten(2).transpose(1, 2) if compute.use_reference() else x.permute(0, 2, 3, 1).reshape(n, h * w, c)
        y = self.norm(t)
        kv = self.context_norm(context) if self.cross else y
        split = lambda z: z.unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)  # [N, heads, S, d]
        q, k, v = split(self.q(y)), split(self.k(kv)), split(self.v(kv))
        attn_mask = None
        if self.cross and self.key_padding_mask and context_mask is not None:
            attn_mask = context_mask[:, None, None, :]  # [N, 1, 1, L], broadcast over heads and queries
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # [N, heads, HW, d]
        t = t + self.o(a.transpose(1, 2).flatten(2))
        t = t + self.mlp(self.mlp_norm(t))
        if compute.use_reference():
            return t.transpose(1, 2).reshape(n, c, h, w)  # a contiguous (NCHW) copy
        # fast path: the tokens [N, HW, C] are a channels-last map already; a view keeps the decoder channels-last
        # (an NCHW decoder meeting channels-last gradients made oneDNN reorder, 2-5x slower convolution backward)
        return t.reshape(n, h, w, c).permute(0, 3, 1, 2)


def _expand(x: Tensor, b: int, p: int) -> Tensor:
    """[B, ...] → [B·P, ...] (row b·P + j is mixture b with prompt j); a no-op if already expanded."""
    if p == 1 or x.shape[0] == b * p:
        return x
    if x.dim() == 4 and not compute.use_reference():
        # fast path: copy in channels-last order, so the result is a channels-last map like its input
        y = x.permute(0, 2, 3, 1)
        return y.unsqueeze(1).expand(b, p, *y.shape[1:]).reshape(b * p, *y.shape[1:]).permute(0, 3, 1, 2)
    return x.unsqueeze(1).expand(b, p, *x.shape[1:]).reshape(b * p, *x.shape[1:])


class Modulation(nn.Module):
    """The SA/CA blocks of one Modulator skip, interleaved SA, CA, SA, CA, … (SA×2 alone = SA, SA).
    Blocks before the first CA do not depend on the prompt and run at batch B; the rest at B·P."""

    def __init__(self, ch: int, cfg: ModelConfig, cond_dim: int):
        super().__init__()
        blocks = []
        for j in range(max(cfg.sa_blocks, cfg.ca_blocks)):
            if j < cfg.sa_blocks:
                blocks.append(AttentionBlock(ch, cfg.heads, cfg.head_dim, cfg.mlp_dim))
            if j < cfg.ca_blocks:
                blocks.append(
                    AttentionBlock(
                        ch,
                        cfg.heads,
                        cfg.head_dim,
                        cfg.mlp_dim,
                        context_dim=cond_dim,
                        key_padding_mask=cfg.ca_key_padding_mask,
                    )
                )
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor, context: Tensor, context_mask: Tensor, b: int, p: int) -> Tensor:
        for block in self.blocks:
            if block.cross:
                x = _expand(x, b, p)
                x = block(x, context, context_mask)
            else:
                x = block(x)
        return x


# ---------------------------------------------------------------------------------------------------------------
# g_θ


class UNetMasker(nn.Module):
    """g_θ: mixture magnitude + text token states → soft mask in [0, 1] (see the module docstring)."""

    def __init__(self, cfg: ModelConfig, cond_dim: int):
        super().__init__()
        if cond_dim <= 0:
            raise ConfigError(
                f"UNetMasker: cond_dim must be positive, got {cond_dim} (model.cond_dim 0 means "
                f"'take it from the embedding backend': pass embedding.token_dim)"
            )
        for name in ("levels", "base_channels", "max_channels", "heads", "head_dim", "mlp_dim", "out_channels"):
            if getattr(cfg, name) < 1:
                raise ConfigError(f"config field 'model.{name}' must be ≥ 1, got {getattr(cfg, name)}")
        for name in ("res_blocks", "sa_blocks", "ca_blocks"):
            if getattr(cfg, name) < 0:
                raise ConfigError(f"config field 'model.{name}' must be ≥ 0, got {getattr(cfg, name)}")
        if not 0 <= cfg.modulator_levels <= cfg.levels:
            raise ConfigError("config field 'model.modulator_levels' must be between 0 and model.levels")
        self.cfg, self.cond_dim = cfg, cond_dim
        ch = channels(cfg)
        L, m = cfg.levels, cfg.modulator_levels
        self.first_modulated = L - m  # levels ≥ this index (0-based) belong to the Modulator
        self.bn0 = nn.BatchNorm2d(1)
        self.down = nn.ModuleList(Down(1 if i == 0 else ch[i - 1], ch[i]) for i in range(L))
        self.enc_res = nn.ModuleList(nn.Sequential(*(ResBlock(ch[i]) for _ in range(cfg.res_blocks))) for i in range(L))
        self.modulation = nn.ModuleList(Modulation(ch[i], cfg, cond_dim) for i in range(L - m, L))
        dec_in = [ch[i] if i == L - 1 else 2 * ch[i] for i in range(L)]  # innermost level has no skip to concat
        self.dec_res = nn.ModuleList(
            nn.Sequential(*(ResBlock(dec_in[i]) for _ in range(cfg.res_blocks))) for i in range(L)
        )
        self.up = nn.ModuleList(
            Up(dec_in[i], ch[i - 1] if i else cfg.out_channels, final=(i == 0), upsample_first=cfg.upsample_first)
            for i in range(L)
        )
        # Prompt gate of the output maps (SoP synthesizer / the authors' InnerProd).
        self.gate = nn.Linear(cond_dim, cfg.out_channels)
        self.gate_scale = nn.Parameter(torch.ones(cfg.out_channels))
        self.gate_bias = nn.Parameter(torch.zeros(1))

    def forward(self, mag: Tensor, tokens: Tensor, token_mask: Tensor) -> Tensor:
        """mag [B, F, T] mixture magnitude; tokens [B, P, L, Dc]; token_mask [B, P, L] bool (True = real token)
        → soft mask [B, P, F, T] in [0, 1]."""
        if mag.dim() != 3:
            raise ValueError(f"UNetMasker: mag must be [B, F, T], got shape {tuple(mag.shape)}")
        if tokens.dim() != 4 or tokens.shape[0] != mag.shape[0] or tokens.shape[-1] != self.cond_dim:
            raise ValueError(
                f"UNetMasker: tokens must be [B={mag.shape[0]}, P, L, Dc={self.cond_dim}], got {tuple(tokens.shape)}"
            )
        if token_mask.shape != tokens.shape[:3]:
            raise ValueError(f"UNetMasker: token_mask must be {tuple(tokens.shape[:3])}, got {tuple(token_mask.shape)}")
        token_mask = token_mask.bool()
        if not bool(token_mask.any(-1).all()):
            raise ValueError("UNetMasker: a prompt has no real token (token_mask row all False)")
        B, Fr, T = mag.shape
        P = tokens.shape[1]
        ctx = tokens.reshape(B * P, *tokens.shape[2:]).to(mag.dtype)  # [B·P, L, Dc]
        cmask = token_mask.reshape(B * P, -1)  # [B·P, L]
        if self.cfg.ca_key_padding_mask and not compute.use_reference():
            # fast path: keys past the longest prompt are masked in every row, so dropping them changes nothing but
            # the work (77 → ~16 keys for "The sound of ..." prompts)
            used = int(torch.nonzero(cmask.any(0)).max()) + 1
            ctx, cmask = ctx[:, :used], cmask[:, :used]

        # Pad F and T up to multiples of 2^levels (zeros = silence); the mask is cropped back at the end.
        k = 2**self.cfg.levels
        pf, pt = -Fr % k, -T % k
        x = torch.log1p(mag).unsqueeze(1)  # [B, 1, F, T]
        if pf or pt:
            x = F.pad(x, (0, pt, 0, pf))
        x = self.bn0(x)

        skips = []
        for i in range(self.cfg.levels):
            # channels-last: oneDNN convs and bilinear up-sampling (fwd+bwd 3.6× faster, measured) prefer it, and
            # the attention tokens [N, HW, C] are then a free view.
            x = self.down[i](x).contiguous(memory_format=torch.channels_last)
            x = self.enc_res[i](x)  # [B or B·P, c_i, F/2^(i+1), T/2^(i+1)]
            if i >= self.first_modulated:
                mod = self.modulation[i - self.first_modulated](x, ctx, cmask, B, P)
                if self.cfg.attn_on_down_path:
                    x = mod
                skips.append(mod)
            else:
                skips.append(x)

        # Fast path (bimodal.compute): with upsample_first=False the outermost level ends conv → bilinear ×2, and
        # the prompt gate is a per-row linear combination of the output maps; both are linear per map, so they
        # commute: gate(up(z)) = up(gate(z)). Gating first up-samples one map instead of out_channels and runs the
        # gate's matmul (whose backward is a slow K=1 outer product) at a quarter of the cells. Same function.
        gate_first = not self.cfg.upsample_first and not compute.use_reference()
        y = None
        for i in reversed(range(self.cfg.levels)):
            s = skips[i]
            if y is None:
                h = s
            else:
                if y.shape[0] != s.shape[0]:
                    y, s = _expand(y, B, P), _expand(s, B, P)
                h = torch.cat([y, s], 1)  # [·, 2·c_i, ...]
            if i == 0 and gate_first:
                y = self.up[0].conv(self.dec_res[0](h))  # [·, out_channels, F/2, T/2], before its up-sampling
            else:
                y = self.up[i](self.dec_res[i](h))
        y = _expand(y, B, P)  # [B·P, out_channels, F' or F'/2, T' or T'/2] (padded sizes)

        lens = cmask.sum(1, keepdim=True).to(ctx.dtype)  # [B·P, 1]
        pooled = (ctx * cmask.unsqueeze(-1).to(ctx.dtype)).sum(1) / lens  # [B·P, Dc]
        g = torch.sigmoid(self.gate(pooled)) * self.gate_scale  # [B·P, out_channels]
        # (Folding the gate into a per-prompt 1-output grouped conv saves FLOPs but its backward is 3× slower in
        # oneDNN, measured; so all out_channels maps are computed and weighted.)
        # As a matmul over the channels-last maps: the broadcast multiply-and-sum was 5× slower (measured).
        n, _, h_, w_ = y.shape
        logits = torch.bmm(y.permute(0, 2, 3, 1).reshape(n, h_ * w_, -1), g.unsqueeze(-1))  # [B·P, h·w, 1]
        logits = logits.reshape(n, 1, h_, w_)
        if gate_first:
            logits = F.interpolate(logits, scale_factor=2.0, mode="bilinear", align_corners=False)
        logits = logits[:, 0, :Fr, :T] + self.gate_bias  # [B·P, F, T]
        return torch.sigmoid(logits).reshape(B, P, Fr, T)


# ---------------------------------------------------------------------------------------------------------------
# f_θ


class Separator(nn.Module):
    """f_θ of eq. 1: STFT → g_θ mask on the magnitude → iSTFT with the mixture phase."""

    def __init__(self, cfg: ModelConfig, cond_dim: int):
        super().__init__()
        if cfg.hop < 1 or tail_window_weight(cfg.n_fft, cfg.hop) < 0.1:
            raise ConfigError(
                f"config field 'model.hop' ({cfg.hop}) does not fit 'model.n_fft' ({cfg.n_fft}): keep "
                f"1 ≤ hop ≤ ~0.4·n_fft so the iSTFT is well conditioned at the signal's end"
            )
        self.cfg = dataclasses.replace(cfg)
        self.cond_dim = int(cond_dim)
        self.masker = UNetMasker(self.cfg, self.cond_dim)
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)
        self.saved_config: dict | None = None  # set by from_pretrained: the stored full Config dict
        self.saved_extra: dict | None = None

    def parameter_summary(self) -> dict[str, int]:
        """Trainable parameters per part: encoder, Modulator attention, decoder, prompt gate, and the total."""
        m = self.masker
        parts = {
            "encoder": [m.bn0, m.down, m.enc_res],
            "attention": [m.modulation],
            "decoder": [m.dec_res, m.up],
            "gate": [m.gate],
        }
        out = {k: sum(count_parameters(x) for x in mods) for k, mods in parts.items()}
        out["gate"] += m.gate_scale.numel() + m.gate_bias.numel()
        out["total"] = count_parameters(self)
        return out

    # -- spectral transforms ------------------------------------------------------------------------------------
    def stft(self, wave: Tensor) -> Tensor:
        """[..., T] → complex [..., F = n_fft/2+1, T' = T//hop + 1] (Hann, centred, reflect padding)."""
        shape = wave.shape
        spec = torch.stft(
            wave.reshape(-1, shape[-1]),
            self.cfg.n_fft,
            self.cfg.hop,
            window=self.window,
            center=True,
            return_complex=True,
        )
        return spec.reshape(*shape[:-1], *spec.shape[-2:])

    def istft(self, spec: Tensor, length: int) -> Tensor:
        """complex [..., F, T'] → [..., length]."""
        shape = spec.shape
        wave = torch.istft(
            spec.reshape(-1, *shape[-2:]), self.cfg.n_fft, self.cfg.hop, window=self.window, center=True, length=length
        )
        return wave.reshape(*shape[:-2], length)

    # -- f_θ ------------------------------------------------------------------------------------------------------
    def forward(self, wave: Tensor, tokens: Tensor, token_mask: Tensor) -> dict:
        """wave [B, T] mixtures; tokens [B, P, L, Dc]; token_mask [B, P, L] bool →
        {"wave": [B, P, T], "mag": [B, P, F, T'], "mask": [B, P, F, T'], "mix_mag": [B, F, T'],
         "mix_spec": complex [B, F, T']}."""
        if wave.dim() != 2:
            raise ValueError(f"Separator: wave must be [B, T], got shape {tuple(wave.shape)}")
        if wave.shape[-1] <= self.cfg.n_fft // 2:
            raise ValueError(
                f"Separator: {wave.shape[-1]} samples is too short for n_fft {self.cfg.n_fft} "
                f"(need more than {self.cfg.n_fft // 2})"
            )
        spec = self.stft(wave)  # [B, F, T']
        mix_mag = spec.abs()
        mask = self.masker(mix_mag, tokens, token_mask)  # [B, P, F, T']
        out = self.istft(spec.unsqueeze(1) * mask, wave.shape[-1])  # mask·|S|·e^{iφ} = mask·S
        return {"wave": out, "mag": mix_mag.unsqueeze(1) * mask, "mask": mask, "mix_mag": mix_mag, "mix_spec": spec}

    @torch.no_grad()
    def separate(
        self,
        wave: Tensor,
        prompts: list[str] | str,
        embedding,
        *,
        chunk_samples: int | None = None,
        progress: bool = False,
    ) -> Tensor:
        """Inference: wave [T] or [B, T] → [P, T] or [B, P, T] for the prompts (a str is one prompt).

        `embedding.embed_text(prompts)` → (pooled [P, D], tokens [P, L, Dc], mask [P, L]). Runs in eval mode and
        restores the previous mode. `chunk_samples` bounds memory on long inputs: overlapping windows (50 %) are
        separated independently and cross-faded with triangular weights (`progress`: a bar over the windows).
        """
        if isinstance(prompts, str):
            prompts = [prompts]
        if not prompts:
            raise ValueError("Separator.separate: no prompt given")
        wave = torch.as_tensor(wave, dtype=torch.float32)
        single = wave.dim() == 1
        if single:
            wave = wave.unsqueeze(0)
        if wave.dim() != 2:
            raise ValueError(f"Separator.separate: wave must be [T] or [B, T], got shape {tuple(wave.shape)}")
        dev = self.window.device
        wave = wave.to(dev)
        _, tokens, mask = embedding.embed_text(list(prompts), padding_states=not self.cfg.ca_key_padding_mask)
        if tokens.shape[-1] != self.cond_dim:
            raise ValueError(
                f"Separator.separate: the embedding gives {tokens.shape[-1]}-d token states, the "
                f"separator was built for cond_dim {self.cond_dim}"
            )
        B, T = wave.shape
        tokens = tokens.to(dev, torch.float32).unsqueeze(0).expand(B, *tokens.shape)
        mask = mask.to(dev).bool().unsqueeze(0).expand(B, *mask.shape)
        was_training = self.training
        self.eval()
        try:
            if not chunk_samples or T <= chunk_samples:
                out = self(wave, tokens, mask)["wave"]
            else:
                out = self._separate_chunked(wave, tokens, mask, int(chunk_samples), progress)
        finally:
            self.train(was_training)
        return out[0] if single else out

    def _separate_chunked(
        self, wave: Tensor, tokens: Tensor, mask: Tensor, chunk: int, progress: bool = False
    ) -> Tensor:
        from tqdm.auto import tqdm

        B, T = wave.shape
        P = tokens.shape[1]
        step = max(chunk // 2, 1)
        ramp = torch.minimum(torch.arange(1, chunk + 1), torch.arange(chunk, 0, -1)).to(wave)  # triangle > 0
        out = wave.new_zeros(B, P, T)
        norm = wave.new_zeros(T)
        start = 0
        bar = tqdm(
            total=-(-max(T - chunk, 0) // step) + 1, desc="separating", unit="window", leave=False, disable=not progress
        )
        while True:
            bar.update(1)
            end = min(start + chunk, T)
            seg = wave[:, start:end]
            if seg.shape[-1] <= self.cfg.n_fft // 2:  # a too-short tail: widen the last window leftwards
                start = max(0, end - chunk)
                seg = wave[:, start:end]
            w = ramp[: end - start]
            out[..., start:end] += self(seg, tokens, mask)["wave"] * w
            norm[start:end] += w
            if end == T:
                break
            start += step
        bar.close()
        return out / norm

    # -- checkpoints ----------------------------------------------------------------------------------------------
    def save(self, path: str | Path, *, config: dict | None = None, extra: dict | None = None) -> None:
        """Atomically write the ModelConfig, cond_dim, the full Config dict (if given) and the weights.
        `extra` must hold only what torch.load(weights_only=True) accepts (numbers, strings, lists, dicts, tensors)."""
        from bimodal.utils import atomic_torch_save

        atomic_torch_save(
            {
                "format": CHECKPOINT_FORMAT,
                "model_config": dataclasses.asdict(self.cfg),
                "cond_dim": self.cond_dim,
                "config": _plain(config, "config"),
                "extra": _plain(extra, "extra"),
                "state_dict": self.state_dict(),
            },
            path,
        )

    @classmethod
    def from_pretrained(cls, path: str | Path, map_location: str | torch.device = "cpu") -> "Separator":
        """Load a checkpoint written by `save` (torch.load with weights_only=True). `.saved_config` holds the stored
        full Config dict (or None), `.saved_extra` the extra dict. CheckpointError names the file and the problem."""
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: no such separator checkpoint")
        try:
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as exc:  # pickle/zip errors come in many types
            if "weights only load failed" in str(exc).lower():  # pickled objects: e.g. a training resume file
                raise CheckpointError(
                    f"{path}: not a bimodal separator checkpoint but a file with pickled objects "
                    f"(a training resume file such as last.pt?); pass the run's best.pt"
                ) from None
            raise CheckpointError(f"{path}: not a loadable torch checkpoint ({exc})") from None
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"{path}: not a bimodal separator checkpoint (expected format "
                f"{CHECKPOINT_FORMAT!r}; training resume files hold more than the separator)"
            )
        try:
            cfg = from_dict({"model": ckpt["model_config"]}).model
        except ConfigError as exc:
            raise CheckpointError(f"{path}: stored model config does not fit this version: {exc}") from None
        model = cls(cfg, int(ckpt["cond_dim"]))
        state, own = ckpt["state_dict"], model.state_dict()
        for key in list(own) + [k for k in state if k not in own]:
            if key not in state:
                raise CheckpointError(f"{path}: config/weights mismatch: weight {key!r} missing from the file")
            if key not in own:
                raise CheckpointError(f"{path}: config/weights mismatch: unexpected weight {key!r} in the file")
            if tuple(state[key].shape) != tuple(own[key].shape):
                raise CheckpointError(
                    f"{path}: config/weights mismatch at {key!r}: file has shape "
                    f"{tuple(state[key].shape)}, the stored config builds {tuple(own[key].shape)}"
                )
        model.load_state_dict(state)
        model.saved_config = ckpt.get("config")
        model.saved_extra = ckpt.get("extra")
        return model


def _plain(obj, where: str):
    """Numbers/strings/None/tensors in dicts and lists, so torch.load(weights_only=True) can read them back; numpy
    scalars and arrays (e.g. metric summaries) are converted, paths become strings, anything else is an error."""
    import numpy as np

    if isinstance(obj, np.generic):  # first: np.float64 is also a float
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str, torch.Tensor)):
        return obj
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    raise TypeError(f"Separator.save: {where} is a {type(obj).__name__}, which a weights-only checkpoint cannot hold")
