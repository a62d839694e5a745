"""Training the offline CLAP-surrogate (:class:`bimodal.embedding.SurrogateEmbedding`) on the embedding corpus.

Objective: symmetric InfoNCE between audio crops and captions with a learned temperature, as CLAP
(`embedding.objective`: also SigLIP's sigmoid loss, or both). Because a batch holds several clips of one label (only
~65 labels), the text side of a batch is its *distinct labels* (one random caption each) and targets are soft:
audio→text puts mass on every label in the item (½ + ½ for a 2-source mixture), text→audio spreads over every item
of that label. Augmentation: bimodal.surrogate.batches. The checkpoint is selected on the corpus's own validation
split (single clips and 2-source mixtures of the 21 classes).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bimodal.config import Config
from bimodal.datasets.labels import CLASSES
from bimodal.embedding import SURROGATE_RATE, SurrogateEmbedding, mean_pool, surrogate_path
from bimodal.surrogate.batches import BatchMaker, augment_logmel
from bimodal.surrogate.corpus import PROMPT, Corpus, load_corpus
from bimodal.surrogate.objectives import additivity_loss, sigmoid_multilabel, soft_infonce
from bimodal.surrogate.settings import TRAIN_EVALS
from bimodal.surrogate.zeroshot import equal_length, zero_shot_eval, zero_shot_top1
from bimodal.utils import atomic_torch_save, file_sha256, seed_everything


def _caption_features(model: SurrogateEmbedding, captions: list[str]) -> dict[str, torch.Tensor]:
    """Mean-pooled frozen MiniLM features of every caption (the text tower is frozen: compute them once)."""
    out = {}
    for i in range(0, len(captions), 64):
        chunk = captions[i : i + 64]
        states, mask = model.text_encoder(chunk)
        for c, f in zip(chunk, mean_pool(states, mask)):
            out[c] = f
    return out


def warm_start(e) -> tuple[SurrogateEmbedding, dict]:
    """The surrogate that `embedding.init` names (a shipped name or a path), checked against the configured
    architecture, and what the new checkpoint records of it (file, sha256, its training config, selected step)."""
    path = surrogate_path(e.init, field="embedding.init")
    model = SurrogateEmbedding.from_checkpoint(path, field="embedding.init")
    want = {"embed_dim": e.embed_dim, "width": e.width, "pool": e.pool}
    have = {"embed_dim": model.arch["embed_dim"], "width": model.arch["channels"][0], "pool": model.arch["pool"]}
    for name in want:
        if want[name] != have[name]:
            raise ValueError(
                f"config field 'embedding.{name}' = {want[name]!r} does not fit the warm-start "
                f"checkpoint {path} (embedding.init), which has {have[name]!r}"
            )
    meta = model.metadata
    record = {
        "name": e.init,
        "file": path.name,
        "sha256": file_sha256(path)[:16],
        "config": meta.get("config", {}),
        "selected_step": meta.get("selected", {}).get("step"),
    }
    return model, record


def train_surrogate(
    cfg: Config,
    out: str | Path,
    *,
    train: Corpus | None = None,
    val: Corpus | None = None,
    evals: int = TRAIN_EVALS,
    progress: bool = True,
) -> dict:
    """Train the surrogate with ``cfg.embedding`` on the profile's TimGM6mb corpus; save the checkpoint selected on
    the corpus's validation split to `out`. Returns a summary (steps, seconds, validation accuracies, history)."""
    e = cfg.embedding
    seed_everything(e.seed)
    if train is None or val is None:
        train, val = load_corpus(cfg.profile, Path(cfg.data.root) if cfg.data.root else None, e.soundfont_list)
    arch = {"embed_dim": e.embed_dim, "channels": [e.width * 2**i for i in range(4)], "pool": e.pool}
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
    feats = _caption_features(
        model,
        sorted({c for v in train.captions.values() for c in v} | {PROMPT.format(lab) for lab in train.label_names}),
    )
    opt = torch.optim.AdamW(
        [
            {"params": [*model.audio.parameters(), *model.text_proj.parameters()], "weight_decay": 1e-4},
            {"params": [model.log_logit_scale, sig_log_scale, sig_bias], "weight_decay": 0.0},
        ],
        lr=e.lr,
    )
    warm = max(1, e.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / e.steps)))
    )
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
            row = {
                "step": step,
                "seconds": round(time.time() - t0, 1),
                "loss": float(np.mean(losses[-50:])),
                "logit_scale": scale.item(),
                "val_top1_all": zero_shot_top1(model, val),
                "val_top1_21": float("nan"),
                "val_mix2_top3_21": float("nan"),
            }
            if val21:
                keep = [i for i, lab in enumerate(val.labels) if lab in val21]
                m = zero_shot_eval(
                    model,
                    equal_length([val.waves[i] for i in keep]),
                    [val.labels[i] for i in keep],
                    SURROGATE_RATE,
                    tuple(val21),
                    mix_passes=2,
                    seed=step,
                )["metrics"].set_index("metric")["value"]
                row.update(val_top1_21=float(m["top1"]), val_mix2_top3_21=float(m["mix2_both_in_top3"]))
            history.append(row)
            if progress:
                print(
                    " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True
                )
            # selection on the corpus's validation split only: single-clip and 2-source-mixture scores alike
            key = (row["val_top1_21"] + row["val_mix2_top3_21"]) / 2 if val21 else row["val_top1_all"]
            if best is None or key >= best[0]:
                best = (key, row)
                if e.objective == "sigmoid":  # the saved temperature (L_CNT's) is then the sigmoid's scale
                    model.log_logit_scale.data.copy_(sig_log_scale.data.clamp(max=math.log(100.0)))
                model.save(
                    out,
                    {
                        "config": cfg.to_dict()["embedding"],
                        "profile": cfg.profile,
                        **({"init": init[1]} if init else {}),
                        "selected": row,
                        "train_clips": len(train.waves),
                        "val_clips": len(val.waves),
                        "labels": train.label_names,
                    },
                )
    model._text_cache.clear()
    summary = {
        "steps": e.steps,
        "seconds": round(time.time() - t0, 1),
        "selected": best[1] if best else None,
        "history": history,
        "checkpoint": str(out),
    }
    # the final metadata also carries the whole history
    ckpt = torch.load(out, map_location="cpu", weights_only=True)
    ckpt["metadata"]["history"] = history
    ckpt["metadata"]["train_seconds"] = summary["seconds"]
    # how it ran: evaluation points select the checkpoint, the thread count sets the training time (and the float
    # reduction order)
    ckpt["metadata"]["evals"] = evals
    ckpt["metadata"]["threads"] = torch.get_num_threads()
    atomic_torch_save(ckpt, out)
    return summary
