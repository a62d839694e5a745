"""What the frozen teacher's L_CNT charges reference predictions, on the training batches a run sees.

L_CNT (eqs. 3–4, `bimodal.losses.cnt_loss`) is contrastive over the B·N·K single-source predictions of a batch, so
its value depends on K (uninformative embeddings give N·log P with P = B·N·K) and on the teacher; a training curve of
L_CNT means little without references at the same K. This module scores three "predictions" of every single source
with the objective's own L_CNT:

- ``clean``: the true single source (what a perfect separator would be charged);
- ``component``: the source's component mixture (no separation within a mixture);
- ``mom``: the mixture of mixtures (no separation at all).

A training run whose L_CNT falls below ``clean`` is charged less than a perfect separator would be: it satisfies
the teacher with something other than the true sources (the separator exploits the teacher). `bimodal embedding
cnt-reference` writes results/cnt_reference.csv.
"""

from __future__ import annotations

import argparse

import pandas as pd
import torch

from bimodal.config import Config, get_config

REFERENCES = ("clean", "component", "mom")


@torch.no_grad()
def cnt_reference(cfg: Config, batches: int = 8, embedding=None, tuned_prompts=None) -> dict[str, float]:
    """Mean L_CNT over the first `batches` training batches of epoch 0 of `cfg`'s run (the items its engine draws,
    seed and K included) for each reference prediction (REFERENCES) → {reference: nats}. tuned_prompts: the run's
    learned prompts (Table 15), if it has them."""
    from bimodal.backends import load_embedding
    from bimodal.datasets.manifest import load_manifest
    from bimodal.datasets.mixtures import training_datasets, training_loader
    from bimodal.objective import Objective, _as_batch

    if batches < 1:
        raise ValueError(f"cnt_reference: batches must be ≥ 1, got {batches}")
    embedding = embedding if embedding is not None else load_embedding(cfg.embedding)
    embedding.eval()
    objective = Objective(cfg, torch.nn.Identity(), embedding)  # only its L_CNT is used: no separator needed
    objective.tuned_prompts = tuned_prompts
    device = next(embedding.parameters(), torch.zeros(0)).device
    # the engine's own mixtures dataset and loader (one process): the batches its epoch 0 starts with
    dataset = training_datasets(cfg, load_manifest(cfg.data), 0, 1)[0]
    dataset.set_epoch(0)
    loader = training_loader(dataset, cfg, 0, 1)
    n = min(batches, len(loader))
    if n < 1:
        raise ValueError(f"cnt_reference: the training set has fewer than one batch of {cfg.train.batch_size} items")
    totals = dict.fromkeys(REFERENCES, 0.0)
    for _, raw in zip(range(n), loader):
        batch = _as_batch(raw, device)
        shape = batch.sources.shape  # [B, N, K, T]
        waves = {
            "clean": batch.sources,
            "component": batch.components.unsqueeze(2).expand(shape),  # [B, N, T] → [B, N, K, T]
            "mom": batch.mom[:, None, None].expand(shape),  # [B, T] → [B, N, K, T]
        }
        for name, w in waves.items():
            totals[name] += float(objective.cnt(w.contiguous(), batch.source_prompts))
    return {name: total / n for name, total in totals.items()}


def teacher_label(cfg: Config) -> str:
    """The weights that score L_CNT, by name and sha256 prefix (bimodal.train.embedding_fingerprint's)."""
    from bimodal.embedding import surrogate_path, weights_fingerprint

    e = cfg.embedding
    name = surrogate_path(e.checkpoint).stem if e.backend == "surrogate" else e.checkpoint
    return f"{name} ({weights_fingerprint(e)})"


def reference_table(profile: str, ks=(2, 3, 4), batches: int = 8, overrides: dict | None = None) -> pd.DataFrame:
    """cnt_reference of the proposed objective's config at each K, one row per K."""
    from bimodal.backends import load_embedding

    rows, embedding = [], None
    for k in ks:
        cfg = get_config(profile, {"train.method": "proposed", "data.k_sources": k, **(overrides or {})})
        embedding = embedding if embedding is not None else load_embedding(cfg.embedding)
        ref = cnt_reference(cfg, batches, embedding)
        rows.append(
            {
                "K": k,
                **{f"L_CNT {name}": round(v, 3) for name, v in ref.items()},
                "batches": batches,
                # the teacher that charged these values: the file outlives a change of the default teacher
                "teacher": teacher_label(cfg),
            }
        )
    return pd.DataFrame(rows)


def cli(argv: list[str]) -> int:
    from bimodal.utils import results_root

    p = argparse.ArgumentParser(
        prog="bimodal embedding cnt-reference",
        description="L_CNT of clean sources, component mixtures and the MoM on training batches, per K",
    )
    p.add_argument("--profile", default="quick", choices=["smoke", "quick", "paper"])
    p.add_argument("--k", default="2,3,4", help="comma-separated sources per training mixture")
    p.add_argument("--batches", type=int, default=8, help="training batches of epoch 0 to average over")
    p.add_argument("--no-write", action="store_true", help="print only; do not write results/cnt_reference.*")
    args = p.parse_args(argv)
    df = reference_table(args.profile, [int(k) for k in args.k.split(",")], args.batches)
    print(df.to_string(index=False))
    if not args.no_write:
        root = results_root(args.profile)
        root.mkdir(parents=True, exist_ok=True)
        df.to_csv(root / "cnt_reference.csv", index=False)
    return 0
