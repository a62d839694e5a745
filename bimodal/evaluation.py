"""Evaluation of a separator on a shipped composition (val2, test2, test3): every source of every mixture queried by
its prompt, scored with BSS-Eval v3 (bimodal.metrics) into a per-mixture table and its summary."""

from __future__ import annotations

import pandas as pd
import torch
from tqdm.auto import tqdm

from bimodal.baselines import registry as baselines
from bimodal.config import Config


def _estimates(cfg: Config, core, mixture, sources, tokens, mask) -> torch.Tensor:
    """The separator's answers [b, S, T] to the S queries of each test mixture [b, T]; a baseline may need the
    references sources [b, S, T] to match its unordered outputs to them (bimodal.baselines)."""
    if baselines.is_baseline(cfg.train.method):
        return baselines.get(cfg.train.method).estimates(core, mixture, sources, tokens, mask)
    return core(mixture, tokens, mask)["wave"]


@torch.no_grad()
def evaluate(
    separator,
    embedding,
    cfg: Config,
    name: str = "val2",
    *,
    limit: int | None = None,
    batch_size: int = 8,
    progress: bool = False,
) -> tuple[pd.DataFrame, dict]:
    """Separate every mixture of a shipped composition ("val2", "test2", "test3") querying each source with
    "The sound of X"; BSS-Eval v3 in float64 on the CPU. Returns (per-mixture table, summary)."""
    from bimodal.datasets.mixtures import EvalMixtureDataset
    from bimodal.metrics import evaluate_mixture, summarize

    core = separator.module if hasattr(separator, "module") else separator
    device = next(core.parameters()).device
    was_training = core.training
    core.eval()
    ds = EvalMixtureDataset(cfg.data, name)
    n = len(ds) if not limit else min(limit, len(ds))
    rows, skipped = [], 0
    for start in tqdm(range(0, n, batch_size), desc=f"eval {name}", disable=not progress, leave=False):
        items = [ds[i] for i in range(start, min(n, start + batch_size))]
        sources = torch.stack([it["sources"] for it in items]).float()  # [b, S, T]
        mixture = sources.sum(1)
        _, tokens, mask = embedding.embed_text(
            [p for it in items for p in it["source_prompts"]], padding_states=not cfg.model.ca_key_padding_mask
        )
        b, S = sources.shape[:2]
        est = (
            _estimates(
                cfg, core, mixture.to(device), sources, tokens.reshape(b, S, *tokens.shape[1:]), mask.reshape(b, S, -1)
            )
            .double()
            .cpu()
            .numpy()
        )
        for j, it in enumerate(items):
            res = evaluate_mixture(sources[j].double().numpy(), est[j], mixture[j].double().numpy())
            if res is None:
                skipped += 1
                continue
            res = {"mixture_id": it["mixture_id"], "classes": "+".join(it["classes"]), **res}
            rows.append(res)
    core.train(was_training)
    from bimodal.metrics import METRICS

    table = pd.DataFrame(rows, columns=["mixture_id", "classes", *METRICS] if not rows else None)
    return table, summarize(table, skipped)
