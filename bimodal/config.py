"""Typed configuration, the three profiles, dotted overrides and the config hash.

One code path serves every profile: `smoke` (seconds, tests and nbval), `quick` (the embedded default on a laptop
CPU) and `paper` (the paper's sizes, for a GPU user with real data and real LAION-CLAP weights). A profile is only a
set of field values; an experiment is a profile plus dotted overrides such as ``{"train.method": "proposed"}``.

A field name that does not exist, or a value of the wrong type, raises :class:`ConfigError` naming the field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, get_type_hints

PROFILES = ("smoke", "quick", "paper")
VARIETIES = ("basic", "varied")  # data.variety: how SynthMUSIC-21 is rendered


class ConfigError(ValueError):
    """A configuration that does not fit: unknown field, wrong type or inconsistent values."""


@dataclass
class DataConfig:
    dataset: str = "synthmusic21"  # synthmusic21 | path to a common-format index CSV (bimodal.datasets.index builders)
    root: str = ""  # where the generated dataset lives; "" = $BIMODAL_DATA or <repo>/data
    sample_rate: int = 11025  # Hz, the paper's rate (Appendix E.2)
    clip_samples: int = 65535  # stored clip length, ≈6 s as in the paper
    segment_samples: int = 65535  # length the separator trains and is tested on (≤ clip_samples)
    clips_per_class: int = 60  # SynthMUSIC-21 clips rendered per class (all splits together: 70/10/20 train/val/test)
    embedding_clips_per_label: int = 24  # clips per label of the disjoint joint-embedding corpus (TimGM6mb)
    k_sources: int = 2  # K: single sources per training mixture (1 = single-source / supervised data)
    n_mix: int = 2  # N: mixtures per mixture-of-mixtures
    single_source_fraction: float = 0.0  # semi-supervised: fraction of training clips usable as single sources
    train_subset: str = (
        "all"  # all | single | mixture: the partition a supervised/unsupervised run trains on (Table 14)
    )
    train_items_per_epoch: int = 512  # training MoMs drawn per epoch
    val_mixtures: int = 64  # validation 2-source mixtures used for model selection
    test_mixtures: int = 0  # 0 = the whole shipped test composition
    eval_passes: int = 1  # shipped val/test compositions: each val/test clip anchors this many mixtures
    seed: int = 0  # rendering seed of the embedded dataset
    # SynthMUSIC-21 rendering: "basic" = one GM preset per class, a light room, one target loudness; "varied" = per
    # clip a preset among the class's FluidR3 variants, velocity and articulation spread, microphone EQ, rooms up
    # to 1.8 s, a level spread and a noise floor (docs/DATA_CARD.md says why; the embedding corpus is unaffected)
    variety: str = "varied"


@dataclass
class ModelConfig:
    n_fft: int = 1022  # 512 frequency bins survive 7 halvings; the paper's 1024 (513 bins) does not (bimodal.model)
    hop: int = 256
    levels: int = 7  # encoder/decoder levels of the U-Net
    modulator_levels: int = 3  # the deepest levels whose skips carry attention (the Modulator)
    base_channels: int = 64  # channels after the first down-sampler, doubled per level up to max_channels
    max_channels: int = 512
    res_blocks: int = 1  # ResBlocks per level (0 disables, 2 = "Res×2")
    sa_blocks: int = 1  # self-attention blocks per Modulator skip
    ca_blocks: int = 1  # cross-attention blocks per Modulator skip
    heads: int = 8
    head_dim: int = 64
    mlp_dim: int = 1024
    out_channels: int = 32  # U-Net output maps combined by the prompt gate into the mask (SoP synthesizer)
    ca_key_padding_mask: bool = True  # False = padded tokens take part in cross-attention (the authors' code)
    attn_on_down_path: bool = False  # True = modulated features also feed deeper levels (the authors' code)
    upsample_first: bool = True  # decoder: bilinear ×2 then conv (authors); False = conv then ×2 (4× cheaper)
    cond_dim: int = 0  # 0 = follow the embedding backend (768 LAION-CLAP, 384 surrogate)


@dataclass
class EmbeddingConfig:
    backend: str = "surrogate"  # surrogate | laion_clap
    checkpoint: str = ""  # laion_clap: local .pt path; surrogate: "" = the weights shipped in the package
    tokenizer: str = ""  # laion_clap: local roberta-base tokenizer folder
    audio_model: str = "HTSAT-base"  # laion_clap audio branch of the checkpoint
    # surrogate training (bimodal.surrogate); the architecture itself is stored in the checkpoint
    embed_dim: int = 256  # surrogate joint-space width (LAION-CLAP: 512, fixed by its checkpoint)
    steps: int = 400  # optimiser steps (batch_size clips each)
    batch_size: int = 64
    lr: float = 2e-3  # AdamW, cosine decay to 0
    width: int = 24  # surrogate audio CNN channels: width, 2·, 4·, 8·width over its four stages
    pool: str = "meanmax"  # surrogate audio CNN pooling over time: meanmax | mean | late (per-frame head, then mean)
    crop_min: float = 1.0  # s, shortest random training crop (the separator feeds 3 s in quick, 6 s in paper)
    crop_max: float = 4.0  # s, longest (the CNN pools globally, so it embeds longer clips too)
    mix_prob: float = 0.2  # share of training items that are 2-source mixtures (target: both classes)
    leak_prob: float = 0.15  # share with a faint second source at -25..-12 dB (target: the main class)
    add_weight: float = 1.0  # weight of the mixture additivity loss (ε_A(a+b) ≈ normalise(ε_A(a) + ε_A(b)))
    # infonce: symmetric soft-target InfoNCE (CLAP's loss); sigmoid: per-pair logistic loss over the labels
    # (SigLIP), where a 2-source mixture is a full positive of both its labels; infonce+sigmoid: their sum
    objective: str = "infonce"
    # SoundFonts of the surrogate's corpus, comma-separated names of bimodal.datasets.soundfonts.CORPUS_SOUNDFONTS
    # (never FluidR3, the separator's): each renders the same scores, so a second one adds timbres of the same labels
    soundfonts: str = "timgm6mb"
    # warm start: a shipped surrogate's name or a checkpoint path whose weights (and architecture: embed_dim, width
    # and pool must match) start training; steps and lr then set a fresh warm-up + cosine schedule. "" = from scratch
    init: str = ""
    seed: int = 0

    @property
    def soundfont_list(self) -> list[str]:
        return split_names(self.soundfonts)


def split_names(text: str) -> list[str]:
    """ "a, b" -> ["a", "b"]: a comma-separated config field as a list."""
    return [part.strip() for part in str(text).split(",") if part.strip()]


@dataclass
class TrainConfig:
    method: str = "proposed"  # supervised | mix_and_separate | proposed | semi_supervised | bimodal.baselines.names
    losses: str = "url+cnt+crl"  # which of url, cnt, crl enter L_TWL (Table 8 ablations)
    alpha: float = 0.1  # weight of L_CNT (Table 9a)
    beta: float = 5.0  # weight of L_CRL
    gamma: float = 10.0  # weight of L_URL
    lambda_s: float = 5.0  # semi-supervised weight of the supervised L_URL (Table 9d)
    lambda_u: float = 1.0  # semi-supervised weight of L_TWL
    # mom: the single-source predictions take the mixture of mixtures as input (the authors' code, which produced
    # the paper's numbers; chosen on validation: results/defaults.md) | component: each component mixture
    # (Algorithm 1 / eq. 5 as written)
    single_source_input: str = "mom"
    loss_domain: str = "magnitude"  # magnitude (weighted ℓ1 on |STFT|, as the authors' code) | waveform (ℓ1)
    gather_negatives: bool = True  # DDP: gather contrastive negatives across processes (the authors' code does not)
    cnt_same_prompt_negatives: bool = False  # True = the same prompt elsewhere in the batch is a negative (eq. 3
    # read literally, and the authors' code); False = such duplicates are left out of each other's candidate sets
    epochs: int = 50
    batch_size: int = 32
    lr: float = 1e-3
    lr_step_epochs: int = 15
    lr_gamma: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float = 0.0  # 0 = off (the paper reports none)
    seed: int = 0
    num_threads: int = 0  # torch intra-op threads; 0 = leave torch's default
    eval_every: int = 1  # validation every N epochs
    # Table 13: weight w of L_CNT added to the supervised L_URL (train.method=supervised): L_URL + w · L_CNT, the
    # frozen embedding scoring each single-source prediction against its prompt; 0 = plain supervised training
    supervised_cnt_weight: float = 0.0
    # Table 15: L_CNT's text side from learned prompts (bimodal.prompt_tuning): cnt_prompt_length context vectors
    # fitted on cnt_prompt_clips single-source training clips per class (0 = the template prompts)
    cnt_prompt_length: int = 0
    cnt_prompt_clips: int = 0
    cnt_prompt_steps: int = 100  # Adam steps of the prompt fit (full batch; ~1 s each at the quick size)
    cnt_prompt_lr: float = 5e-3
    # Not in the paper (a diagnosis of the quick profile, docs/FINDINGS.md): "" = L_CNT as eqs. 3–4 | "clean" = a
    # hinge max(L_CNT − c, 0), c the L_CNT the teacher charges the true single sources of the run's training batches
    # (bimodal.cnt_reference, measured once at the start of the run): L_CNT stops pulling once the predictions score
    # as well as clean sources would, where, below it, the separator satisfies the teacher with artifacts
    cnt_floor: str = ""


@dataclass
class Config:
    profile: str = "quick"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def identity(self) -> dict:
        """What identifies a separator run: the config without the surrogate's own training hyper-parameters
        (a run depends on the embedding's *weights*, which bimodal.train fingerprints, not on how they were
        trained), and without fields added later while they hold the value every earlier run had
        (IDENTITY_NEUTRAL), so adding a field does not re-key the runs trained before it."""
        d = self.to_dict()
        d["embedding"] = {k: d["embedding"][k] for k in RUN_EMBEDDING_FIELDS}
        for key, neutral in IDENTITY_NEUTRAL.items():
            section, name = key.split(".")
            if d[section].get(name) == neutral:
                del d[section][name]
        if self.train.method not in SINGLE_SOURCE_BRANCH_METHODS:
            # a method without the single-source branch never reads the field: one canonical value (the default
            # it had before `mom` became the default), so that change of default did not re-key these runs
            d["train"]["single_source_input"] = "component"
        return d

    def hash(self) -> str:
        """Stable 12-hex-digit id of the config's identity: runs are cached under it."""
        blob = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def override(self, overrides: dict[str, Any] | None) -> "Config":
        """A copy with dotted overrides applied, e.g. ``{"train.method": "supervised", "data.k_sources": 3}``."""
        new = from_dict(self.to_dict())
        for key, value in (overrides or {}).items():
            section, _, name = key.partition(".")
            if not name:
                if section != "profile":
                    raise ConfigError(
                        f"config override {key!r}: use 'section.field' (sections: data, model, embedding, train)"
                    )
                new.profile = str(value)
                continue
            target = getattr(new, section, None)
            if target is None or not dataclasses.is_dataclass(target):
                raise ConfigError(f"config override {key!r}: unknown section {section!r}")
            _set_field(target, name, value, where=key)
        validate(new)
        return new


# The methods whose loss predicts single sources from the training mixture (L_CNT, L_CRL; train.single_source_input)
SINGLE_SOURCE_BRANCH_METHODS = ("proposed", "semi_supervised")

# Fields added after runs were trained, with the value those runs had: left out of the identity while they hold it.
IDENTITY_NEUTRAL: dict[str, Any] = {
    "data.variety": "basic",
    "train.supervised_cnt_weight": 0.0,
    "train.cnt_prompt_length": 0,
    "train.cnt_prompt_clips": 0,
    "train.cnt_prompt_steps": 100,
    "train.cnt_prompt_lr": 5e-3,
    "train.cnt_floor": "",
}

# The fields that say which embedding a run uses (the rest of EmbeddingConfig says how a surrogate is trained).
EMBEDDING_USE_FIELDS = ("backend", "checkpoint", "tokenizer", "audio_model")
# Those in a run's identity: the checkpoint is identified by the sha256 of its bytes (bimodal.train.
# embedding_fingerprint), not by its name, so the same weights under two names ("" = the default asset, or the
# asset's own name) are one run.
RUN_EMBEDDING_FIELDS = ("backend", "tokenizer", "audio_model")

_SECTIONS = {"data": DataConfig, "model": ModelConfig, "embedding": EmbeddingConfig, "train": TrainConfig}


def _set_field(obj: Any, name: str, value: Any, where: str) -> None:
    hints = get_type_hints(type(obj))
    if name not in hints:
        raise ConfigError(
            f"config field {where!r} does not exist; known fields of this section: {', '.join(sorted(hints))}"
        )
    kind = hints[name]
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(value)
                value = value.lower() in ("true", "1")
            else:
                value = bool(value)
        elif kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            value = int(value)
        elif kind is float:
            value = float(value)
        elif kind is str:
            value = str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"config field {where!r}: {value!r} is not a valid {kind.__name__}") from None
    setattr(obj, name, value)


def from_dict(d: dict) -> Config:
    """Build a Config from a (possibly partial) nested dict, e.g. one saved beside a checkpoint."""
    cfg = Config()
    for key, value in d.items():
        if key == "profile":
            cfg.profile = str(value)
        elif key in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"config section {key!r} must be a mapping")
            for name, v in value.items():
                _set_field(getattr(cfg, key), name, v, where=f"{key}.{name}")
        else:
            raise ConfigError(f"config has an unknown section {key!r}")
    return cfg


def tail_window_weight(n_fft: int, hop: int) -> float:
    """Hann weight of the worst-covered last sample of a centred STFT: the sample hop-1 past the last frame centre
    sits at index n_fft//2 + hop - 1 of that frame and of no later frame. Near 0 = the iSTFT divides by ~0 there."""
    j = n_fft // 2 + hop - 1
    return 0.0 if j >= n_fft or n_fft < 2 else math.sin(math.pi * j / n_fft) ** 2


def validate(cfg: Config) -> None:
    """Cross-field checks; raises ConfigError naming the offending field."""
    if cfg.profile not in PROFILES:
        raise ConfigError(f"config field 'profile': {cfg.profile!r} is not one of {PROFILES}")
    d, m, t = cfg.data, cfg.model, cfg.train
    if d.segment_samples > d.clip_samples:
        raise ConfigError(
            f"config field 'data.segment_samples' ({d.segment_samples}) exceeds 'data.clip_samples' ({d.clip_samples})"
        )
    if not 1 <= d.k_sources <= 4:
        raise ConfigError(f"config field 'data.k_sources' must be 1..4, got {d.k_sources}")
    if d.n_mix < 1 or d.n_mix * d.k_sources > 21:
        raise ConfigError(
            f"config field 'data.n_mix' ({d.n_mix}) × k_sources ({d.k_sources}) needs that many "
            f"distinct classes (at most 21)"
        )
    if d.clips_per_class < 3:
        raise ConfigError(
            f"config field 'data.clips_per_class' must be >= 3 (train, val and test need a clip "
            f"each), got {d.clips_per_class}"
        )
    if d.embedding_clips_per_label < 1 or d.eval_passes < 1:
        raise ConfigError("config fields 'data.embedding_clips_per_label' and 'data.eval_passes' must be >= 1")
    if d.sample_rate <= 0 or d.clip_samples <= 0:
        raise ConfigError("config fields 'data.sample_rate' and 'data.clip_samples' must be positive")
    if not 0.0 <= d.single_source_fraction < 1.0:
        raise ConfigError("config field 'data.single_source_fraction' must be in [0, 1)")
    for name in ("levels", "hop", "base_channels", "max_channels", "heads", "head_dim", "mlp_dim", "out_channels"):
        if getattr(m, name) < 1:
            raise ConfigError(f"config field 'model.{name}' must be ≥ 1, got {getattr(m, name)}")
    for name in ("res_blocks", "sa_blocks", "ca_blocks", "cond_dim"):
        if getattr(m, name) < 0:
            raise ConfigError(f"config field 'model.{name}' must be ≥ 0, got {getattr(m, name)}")
    if tail_window_weight(m.n_fft, m.hop) < 0.1:
        raise ConfigError(
            f"config field 'model.hop' ({m.hop}) is too large for 'model.n_fft' ({m.n_fft}): the last "
            f"samples of a signal would be covered only by the edge of one Hann window, and the "
            f"inverse STFT would amplify errors there (keep hop ≤ ~0.4·n_fft, e.g. 766/256, 1022/256)"
        )
    bins = m.n_fft // 2 + 1
    if bins % (2**m.levels):
        raise ConfigError(
            f"config field 'model.n_fft': {m.n_fft} gives {bins} frequency bins, which "
            f"{m.levels} halvings (model.levels) do not divide; use n_fft = k·2^{m.levels + 1} - 2 "
            f"(e.g. 1022 for 7 levels)"
        )
    frames = d.segment_samples // m.hop + 1  # centred STFT
    if frames % (2**m.levels):
        raise ConfigError(
            f"config field 'data.segment_samples': {d.segment_samples} samples give {frames} STFT "
            f"frames at hop {m.hop}, which {m.levels} halvings (model.levels) do not divide; use "
            f"k·2^{m.levels}·hop - 1 samples (e.g. 65535 at hop 256)"
        )
    if not 0 <= m.modulator_levels <= m.levels:
        raise ConfigError("config field 'model.modulator_levels' must be between 0 and model.levels")
    from bimodal.baselines import names as baselines

    if t.method not in ("supervised", "mix_and_separate", "proposed", "semi_supervised", *baselines.METHODS):
        raise ConfigError(f"config field 'train.method': unknown method {t.method!r}")
    problem = baselines.config_problem(cfg) if t.method in baselines.METHODS else None
    if problem:
        raise ConfigError(problem)
    unknown = set(filter(None, t.losses.split("+"))) - {"url", "cnt", "crl"}
    if unknown or not t.losses:
        raise ConfigError(f"config field 'train.losses': {t.losses!r} must be '+'-joined names from url, cnt, crl")
    if t.single_source_input not in ("component", "mom"):
        raise ConfigError("config field 'train.single_source_input' must be 'component' or 'mom'")
    if t.cnt_floor not in ("", "clean"):
        raise ConfigError(f"config field 'train.cnt_floor' must be '' (eqs. 3–4) or 'clean', got {t.cnt_floor!r}")
    if t.cnt_floor and not (t.method in SINGLE_SOURCE_BRANCH_METHODS and "cnt" in t.losses):
        raise ConfigError(
            "config field 'train.cnt_floor': the floor applies to L_CNT, which this run does not use "
            f"(train.method={t.method!r}, train.losses={t.losses!r})"
        )
    if t.loss_domain not in ("magnitude", "waveform"):
        raise ConfigError("config field 'train.loss_domain' must be 'magnitude' or 'waveform'")
    if (t.cnt_prompt_length > 0) != (t.cnt_prompt_clips > 0) or t.cnt_prompt_length < 0 or t.cnt_prompt_clips < 0:
        raise ConfigError(
            "config fields 'train.cnt_prompt_length' and 'train.cnt_prompt_clips': set both ≥ 1 (learned prompts "
            f"for L_CNT) or both 0 (the template prompts); got {t.cnt_prompt_length} and {t.cnt_prompt_clips}"
        )
    if t.cnt_prompt_length and not (t.method in SINGLE_SOURCE_BRANCH_METHODS and "cnt" in t.losses):
        raise ConfigError(
            "config field 'train.cnt_prompt_length': learned prompts feed L_CNT, which this run does not use "
            f"(train.method={t.method!r}, train.losses={t.losses!r})"
        )
    if t.cnt_prompt_length and (t.cnt_prompt_steps < 1 or t.cnt_prompt_lr <= 0):
        raise ConfigError("config fields 'train.cnt_prompt_steps' must be ≥ 1 and 'train.cnt_prompt_lr' > 0")
    # (the backend is checked when the prompts are fitted: bimodal.prompt_tuning implements the surrogate's tower)
    if t.supervised_cnt_weight and t.method != "supervised":
        raise ConfigError(
            f"config field 'train.supervised_cnt_weight' is read by train.method=supervised only (got {t.method!r}); "
            f"the proposed objective weighs L_CNT with 'train.alpha'"
        )
    if cfg.embedding.backend not in ("surrogate", "laion_clap"):
        raise ConfigError(f"config field 'embedding.backend': unknown backend {cfg.embedding.backend!r}")
    e = cfg.embedding
    for name in ("embed_dim", "steps", "batch_size", "width"):
        if getattr(e, name) < 1:
            raise ConfigError(f"config field 'embedding.{name}' must be ≥ 1, got {getattr(e, name)}")
    if not (e.mix_prob >= 0 and e.leak_prob >= 0 and e.mix_prob + e.leak_prob <= 1):
        raise ConfigError("config fields 'embedding.mix_prob' and 'embedding.leak_prob' must be ≥ 0 and sum to ≤ 1")
    if e.objective not in ("infonce", "sigmoid", "infonce+sigmoid"):
        raise ConfigError(
            f"config field 'embedding.objective': {e.objective!r} is not 'infonce', 'sigmoid' or 'infonce+sigmoid'"
        )
    if e.add_weight < 0:
        raise ConfigError(f"config field 'embedding.add_weight' must be ≥ 0, got {e.add_weight}")
    if e.pool not in ("meanmax", "mean", "late"):
        raise ConfigError(f"config field 'embedding.pool': {e.pool!r} is not 'meanmax', 'mean' or 'late'")
    from bimodal.datasets.soundfonts import CORPUS_SOUNDFONTS

    unknown = [sf for sf in e.soundfont_list if sf not in CORPUS_SOUNDFONTS]
    if unknown or not e.soundfont_list or len(set(e.soundfont_list)) < len(e.soundfont_list):
        raise ConfigError(
            f"config field 'embedding.soundfonts': {e.soundfonts!r} must name distinct corpus "
            f"SoundFonts among {', '.join(CORPUS_SOUNDFONTS)} (comma-separated)"
        )
    if not 0 < e.crop_min <= e.crop_max or e.lr <= 0:
        raise ConfigError("config fields 'embedding.crop_min' ≤ 'embedding.crop_max' and 'embedding.lr' must be > 0")
    if d.variety not in VARIETIES:
        raise ConfigError(f"config field 'data.variety': {d.variety!r} is not one of {', '.join(VARIETIES)}")
    if d.train_subset not in ("all", "single", "mixture"):
        raise ConfigError("config field 'data.train_subset' must be 'all', 'single' or 'mixture'")
    if d.train_subset != "all" and d.single_source_fraction <= 0:
        raise ConfigError(
            f"config field 'data.single_source_fraction' must be > 0 when data.train_subset is {d.train_subset!r}"
        )
    if t.method == "semi_supervised" and d.single_source_fraction <= 0:
        raise ConfigError("config field 'data.single_source_fraction' must be > 0 for train.method 'semi_supervised'")
    validate_ranges(cfg)


# (section.field, lowest allowed value, whether the lowest value itself is allowed): checked by validate_ranges
_RANGES = [
    ("train.epochs", 1, True),
    ("train.batch_size", 1, True),
    ("train.lr", 0.0, False),
    ("train.lr_step_epochs", 1, True),
    ("train.lr_gamma", 0.0, False),
    ("train.weight_decay", 0.0, True),
    ("train.grad_clip", 0.0, True),
    ("train.num_threads", 0, True),
    ("train.eval_every", 1, True),
    ("train.alpha", 0.0, True),
    ("train.beta", 0.0, True),
    ("train.gamma", 0.0, True),
    ("train.lambda_s", 0.0, True),
    ("train.lambda_u", 0.0, True),
    ("train.supervised_cnt_weight", 0.0, True),
    ("data.train_items_per_epoch", 1, True),
    ("data.val_mixtures", 1, True),
    ("data.test_mixtures", 0, True),
]


def validate_ranges(cfg: Config) -> None:
    """Values that would fail late (after data and models are loaded) or silently: every float field finite, the
    fields of _RANGES within range, and at least one training batch per epoch. ConfigError names the field."""
    for section in _SECTIONS:
        obj = getattr(cfg, section)
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"config field '{section}.{f.name}' must be a finite number, got {value}")
    for key, low, inclusive in _RANGES:
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value < low or (value == low and not inclusive):
            raise ConfigError(f"config field '{key}' must be {'≥' if inclusive else '>'} {low}, got {value}")
    d, t = cfg.data, cfg.train
    if d.train_items_per_epoch < t.batch_size:
        raise ConfigError(
            f"config field 'data.train_items_per_epoch' ({d.train_items_per_epoch}) is smaller than "
            f"'train.batch_size' ({t.batch_size}): an epoch would hold no training batch"
        )


# Per-profile values. `paper` follows the paper (Section 4, Appendices C-E); `quick` and `smoke` keep the same code
# path at sizes a 2-core CPU can train. The quick sizes are tuned in the training issue; see README "Profiles".
_PROFILE_OVERRIDES: dict[str, dict[str, Any]] = {
    "paper": {
        "data.clips_per_class": 1000,
        "data.embedding_clips_per_label": 200,
        "data.train_items_per_epoch": 16000,
        "data.val_mixtures": 500,
        "model.base_channels": 64,
        "embedding.backend": "laion_clap",
        "train.epochs": 50,
        "train.batch_size": 32,
    },
    "quick": {
        "data.clips_per_class": 60,
        "data.embedding_clips_per_label": 24,
        "data.segment_samples": 32767,
        "data.train_items_per_epoch": 512,
        "data.val_mixtures": 64,
        # Sized by benchmarks/unet.py --candidates (results/benchmark_unet.md): the cheapest model that keeps the
        # SA+CA conditioning; n_fft 766 since 510/256 leaves the signal's last samples at a Hann window edge.
        "model.n_fft": 766,
        "model.levels": 5,
        "model.modulator_levels": 2,
        "model.base_channels": 8,
        "model.max_channels": 64,
        "model.res_blocks": 0,
        "model.heads": 4,
        "model.head_dim": 16,
        "model.mlp_dim": 128,
        "model.out_channels": 8,
        "model.upsample_first": False,
        "train.epochs": 12,
        "train.batch_size": 16,
        "train.lr_step_epochs": 8,
    },
    "smoke": {
        "data.clips_per_class": 6,
        "data.embedding_clips_per_label": 2,
        "data.clip_samples": 16383,
        "data.segment_samples": 8191,
        "data.train_items_per_epoch": 8,
        "data.val_mixtures": 4,
        "data.test_mixtures": 6,
        "model.n_fft": 766,
        "model.levels": 3,
        "model.modulator_levels": 1,
        "model.base_channels": 4,
        "model.max_channels": 16,
        "model.heads": 2,
        "model.head_dim": 8,
        "model.mlp_dim": 32,
        "model.out_channels": 4,
        "model.upsample_first": False,
        "train.epochs": 2,
        "train.batch_size": 4,
        "train.lr_step_epochs": 1,
        "embedding.steps": 3,
        "embedding.batch_size": 8,
    },
}


def get_config(profile: str = "quick", overrides: dict[str, Any] | None = None) -> Config:
    """The config of a profile with optional dotted overrides applied."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    cfg = Config(profile=profile).override(_PROFILE_OVERRIDES[profile])
    return cfg.override(overrides)
