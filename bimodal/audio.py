"""Audio I/O through soundfile (torchaudio>=2.9 load/save need TorchCodec + FFmpeg, which we do not require).

Every reader converts to mono float32 at the requested rate and raises :class:`AudioError` naming the file when it
cannot: missing, unreadable, empty, non-finite, or (when asked) silent or too short.
"""

from __future__ import annotations

from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

SILENCE_THRESHOLD = 1e-5  # Σ|x| below this is "silent" (the Sound-of-Pixels rule the authors used)


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file and the reason."""


def resample(wave: np.ndarray | torch.Tensor, orig_sr: int, new_sr: int):
    """Band-limited (sinc) resampling along the last axis; returns the input type. torchaudio's kernel, so the
    training-time resampling of predictions (differentiable, on tensors) and file loading agree."""
    if orig_sr == new_sr:
        return wave
    g = gcd(int(orig_sr), int(new_sr))
    if isinstance(wave, torch.Tensor):
        return AF.resample(wave, orig_sr // g, new_sr // g)
    out = AF.resample(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)), orig_sr // g, new_sr // g)
    return out.numpy()


def load_audio(path: str | Path, sample_rate: int, *, min_samples: int = 0, allow_silent: bool = True) -> np.ndarray:
    """Read any rate / channel count, return mono float32 [T] at `sample_rate`.

    Stereo and multichannel files are averaged to mono (the paper uses mono only, Appendix E.2).
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)  # [T, C]
    except Exception as exc:  # soundfile raises several types (LibsndfileError, RuntimeError, TypeError)
        raise AudioError(f"{path}: unreadable audio ({exc})") from None
    if data.size == 0:
        raise AudioError(f"{path}: the file holds no samples")
    wave = data.mean(axis=1)
    if not np.all(np.isfinite(wave)):
        raise AudioError(f"{path}: contains NaN or infinite samples")
    wave = resample(wave, sr, sample_rate).astype(np.float32, copy=False)
    if len(wave) < min_samples:
        raise AudioError(f"{path}: too short ({len(wave)} samples at {sample_rate} Hz, need {min_samples})")
    if not allow_silent and float(np.abs(wave).sum()) <= SILENCE_THRESHOLD:
        raise AudioError(f"{path}: silent")
    return wave


def audio_info(path: str | Path) -> tuple[int, int, int]:
    """(sample_rate, frames, channels) without reading the samples; AudioError if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    try:
        info = sf.info(str(path))
    except Exception as exc:
        raise AudioError(f"{path}: unreadable audio ({exc})") from None
    return int(info.samplerate), int(info.frames), int(info.channels)


def save_audio(path: str | Path, wave: np.ndarray | torch.Tensor, sample_rate: int, subtype: str = "PCM_16") -> None:
    """Write mono [T] (or [T, C]) audio; values are clipped to [-1, 1] for integer subtypes."""
    if isinstance(wave, torch.Tensor):
        wave = wave.detach().cpu().numpy()
    wave = np.asarray(wave, dtype=np.float32)
    if subtype.startswith("PCM"):
        wave = np.clip(wave, -1.0, 1.0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wave, int(sample_rate), subtype=subtype)


def is_silent(wave: np.ndarray | torch.Tensor) -> bool:
    total = wave.abs().sum().item() if isinstance(wave, torch.Tensor) else float(np.abs(wave).sum())
    return total <= SILENCE_THRESHOLD
