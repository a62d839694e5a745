"""Random training batches of the surrogate: crops of 1–6 s (`embedding.crop_min` … `crop_max`; the separator
feeds 3 s in quick, 6 s in paper), speed change (pitch and tempo together, ±2 semitones), gain, additive
white/brown noise, 2-source mixtures and faint leakage of a second source (so that imperfect single-source
predictions score sensibly), and random EQ and SpecAugment masks on the log-mel."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from bimodal.embedding import SURROGATE_RATE
from bimodal.surrogate.corpus import PROMPT, Corpus


def _speed_crop(wave: np.ndarray, length: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    """A random crop of `length` samples played `rate` times faster (pitch and tempo together).

    Linear interpolation: for ±12 % speed changes its aliasing is far below the timbre cues we train on, and it costs
    nothing next to a per-item polyphase resampler."""
    need = int(math.ceil(length * rate)) + 1
    if len(wave) < need:
        wave = np.pad(wave, (0, need - len(wave)))
    start = int(rng.integers(0, len(wave) - need + 1))
    seg = wave[start : start + need]
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
        captions = [
            self.corpus.captions[lab][int(rng.integers(len(self.corpus.captions[lab])))]
            if rng.random() < 0.5
            else PROMPT.format(lab)
            for lab in labels
        ]
        return Batch(
            torch.from_numpy(np.stack(waves)),
            targets,
            captions,
            targets.max(dim=1).values == 1.0,
            labels,
            torch.tensor(pairs, dtype=torch.long).reshape(-1, 2),
        )


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
            masked[i, f0 : f0 + w, :] = x[i].mean()
        if torch.rand(1, generator=gen).item() < 0.5 and T > 8:
            w = int(torch.randint(1, max(2, T // 8), (1,), generator=gen))
            t0 = int(torch.randint(0, T - w + 1, (1,), generator=gen))
            masked[i, :, t0 : t0 + w] = x[i].mean()
    return masked
