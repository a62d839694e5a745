"""`bimodal separate`: extract the sound a text prompt describes from an audio file with a trained separator
checkpoint (bimodal.model.Separator); the output path, the options and loud outputs are checked here."""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from bimodal.config import ConfigError, from_dict
from bimodal.model import CheckpointError, Separator


def output_subtype(output: str | Path, mixture: str | Path) -> tuple[str, str]:
    """Check an output path before any separation work: not the input, not a folder, in a writable folder, with an
    extension naming a format soundfile writes. Returns (format, the subtype to write: 16-bit PCM where the format
    has it, else its default). ValueError naming the path otherwise."""
    import os

    import soundfile as sf

    from bimodal.utils import NotWritable, ensure_writable_dir

    out = Path(output)
    if out.is_dir():
        raise ValueError(f"-o {out}: is a folder; name an audio file, e.g. {out / 'separated.wav'}")
    if out.exists() and Path(mixture).exists() and os.path.samefile(out, mixture):
        raise ValueError(f"-o {out}: is the input file; the separation would overwrite it")
    fmt = out.suffix[1:].upper()
    writable = sorted(f.lower() for f in sf.available_formats() if sf.default_subtype(f))
    if fmt not in sf.available_formats() or not sf.default_subtype(fmt):
        raise ValueError(
            f"-o {out}: {out.suffix or 'no extension'} is not an audio format soundfile writes; use "
            f"one of .{', .'.join(writable)}"
        )
    try:
        ensure_writable_dir(out.parent, f"-o {out}: the output folder")
    except NotWritable as exc:
        raise ValueError(str(exc)) from None
    return fmt, ("PCM_16" if sf.check_format(fmt, "PCM_16") else sf.default_subtype(fmt))


def unclipped(wave: torch.Tensor, fmt: str, subtype: str) -> tuple[torch.Tensor, str, str | None]:
    """A separated signal peaking above 1 would clip in an integer or lossy file: write it as 32-bit float where the
    format has float samples, else peak-normalise it to 0.99. Returns (wave, subtype, the warning or None)."""
    import soundfile as sf

    peak = float(wave.abs().max()) if wave.numel() else 0.0
    if peak <= 1.0:
        return wave, subtype, None
    if sf.check_format(fmt, "FLOAT"):
        return (
            wave,
            "FLOAT",
            (
                f"the separated signal peaks at {peak:.2f} (above 1, which {subtype} would clip): "
                f"saved as 32-bit float samples instead"
            ),
        )
    return (
        wave * (0.99 / peak),
        subtype,
        (
            f"the separated signal peaks at {peak:.2f} (above 1) and {fmt} has no "
            f"float samples: peak-normalised to 0.99 (scaled by {0.99 / peak:.4g})"
        ),
    )


def prompt_outside_vocabulary(prompt: str) -> str | None:
    """A warning when a prompt names none of the labels the offline surrogate was trained on (its text side knows
    only these, so another sound is separated poorly); None when it names one."""
    from bimodal.datasets.instruments import embedding_labels

    labels = embedding_labels()
    text = " ".join(prompt.lower().split())
    if any(label.lower() in text for label in labels):
        return None
    return (
        f"the prompt names none of the {len(labels)} sounds the offline surrogate embedding was trained on "
        f"(e.g. {', '.join(labels[:6])}); expect a poor separation"
    )


def separate_cli(argv: list[str]) -> int:
    """`bimodal separate mixture.wav "the sound of violin" -o violin.wav --checkpoint run/best.pt`."""
    from bimodal.audio import AudioError, audio_info, load_audio, resample, save_audio
    from bimodal.config import Config

    ap = argparse.ArgumentParser(
        prog="bimodal separate", description="Extract the sound a text prompt describes from an audio file."
    )
    ap.add_argument("mixture", help="input audio file (any rate / channel count; mixed to mono)")
    ap.add_argument("prompt", help='text query, e.g. "the sound of violin"')
    ap.add_argument("-o", "--output", required=True, help="output audio file (mono, at the input's rate)")
    ap.add_argument("--checkpoint", required=True, help="separator checkpoint (e.g. runs/<hash>/best.pt)")
    ap.add_argument(
        "--chunk-seconds",
        type=float,
        default=30.0,
        help="separate longer inputs in overlapping windows of this length (0 = whole file)",
    )
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    args = ap.parse_args(argv)
    # usage errors before any work (loading, separating): exit 2 naming the option
    if not args.prompt.strip():
        ap.error('the prompt is empty; say what to extract, e.g. "the sound of violin"')
    if not math.isfinite(args.chunk_seconds) or args.chunk_seconds < 0:
        ap.error(f"--chunk-seconds must be a finite number ≥ 0 (0 = the whole file at once), got {args.chunk_seconds}")
    if args.threads < 0:
        ap.error(f"--threads must be ≥ 1 (or 0 = torch's default), got {args.threads}")
    try:
        fmt, subtype = output_subtype(args.output, args.mixture)
    except ValueError as exc:
        ap.error(str(exc))
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        sep = Separator.from_pretrained(args.checkpoint)
        cfg = from_dict(sep.saved_config) if sep.saved_config else Config()
        if not sep.saved_config:
            print(
                f"bimodal separate: {args.checkpoint} stores no full config; assuming "
                f"{cfg.data.sample_rate} Hz and the {cfg.embedding.backend!r} embedding",
                file=sys.stderr,
            )
        sr = cfg.data.sample_rate
        in_sr, in_frames, _ = audio_info(args.mixture)
        wave = torch.from_numpy(load_audio(args.mixture, sr))
        # Looked up through sys.modules (importlib) so tests can substitute the embedding module.
        if cfg.embedding.backend == "surrogate" and (warning := prompt_outside_vocabulary(args.prompt)):
            print(f"bimodal separate: warning: {warning}", file=sys.stderr)
        embedding = importlib.import_module("bimodal.backends").load_embedding(cfg.embedding)
        chunk = int(args.chunk_seconds * sr) if args.chunk_seconds > 0 else None
        out = sep.separate(wave, [args.prompt], embedding, chunk_samples=chunk, progress=True)[0]  # [T]
    except (AudioError, CheckpointError, ConfigError, ValueError, OSError) as exc:
        print(f"bimodal separate: {exc}", file=sys.stderr)
        return 1
    out = resample(out, sr, in_sr)
    out = F.pad(out, (0, max(0, in_frames - out.shape[-1])))[:in_frames]  # same length as the input
    out, subtype, warning = unclipped(out, fmt, subtype)
    if warning:
        print(f"bimodal separate: warning: {warning}", file=sys.stderr)
    try:
        save_audio(args.output, out, in_sr, subtype=subtype)
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, TypeError
        print(f"bimodal separate: -o {args.output}: cannot write ({exc})", file=sys.stderr)
        return 1
    print(f"{args.output}: {in_frames / in_sr:.2f} s at {in_sr} Hz ({args.prompt!r})")
    return 0
