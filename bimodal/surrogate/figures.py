"""Figures of the zero-shot evaluation: the confusion matrix and the prompts' similarity matrices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch.nn.functional as F

from bimodal.datasets.labels import CLASSES
from bimodal.embedding import JointEmbedding, SurrogateEmbedding, mean_pool
from bimodal.surrogate.corpus import PROMPT


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
                ax.text(
                    j,
                    i,
                    str(confusion[i, j]),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if rows[i, j] > 0.5 else "black",
                )
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


def plot_prompt_similarity(
    sims: dict[str, np.ndarray], classes: tuple[str, ...] = CLASSES, out: str | Path | None = None
):
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
