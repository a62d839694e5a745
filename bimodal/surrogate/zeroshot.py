"""Zero-shot evaluation of a joint embedding on SynthMUSIC-21 (the separator's domain, never seen in the surrogate's
training): top-1 over the 21 "The sound of X" prompts on single test clips; for seeded 2-source mixtures whether
both true classes are in the top 3, and the room L_CNT has to reward separation (mix2_cnt_gap_nats). Writes
results/embedding_zeroshot*.csv|md and figures/01_confusion*.png."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bimodal.audio import load_audio
from bimodal.backends import load_embedding
from bimodal.config import Config
from bimodal.datasets.labels import CLASSES
from bimodal.datasets.manifest import load_manifest
from bimodal.embedding import ASSET, SURROGATE_RATE, JointEmbedding, shipped_surrogates
from bimodal.surrogate.corpus import PROMPT, Corpus
from bimodal.surrogate.figures import plot_confusion
from bimodal.utils import data_root, figures_root, results_root


@torch.no_grad()
def embed_clips(
    embedding: JointEmbedding, waves: list[np.ndarray] | np.ndarray, sample_rate: int = SURROGATE_RATE, batch: int = 16
) -> torch.Tensor:
    """[N, D] audio embeddings of equal-length clips, in batches."""
    out = []
    for i in range(0, len(waves), batch):
        out.append(embedding.embed_audio(torch.from_numpy(np.stack(waves[i : i + batch])), sample_rate))
    return torch.cat(out)


def equal_length(waves: list[np.ndarray]) -> list[np.ndarray]:
    n = min(len(w) for w in waves)
    return [w[:n] for w in waves]


def zero_shot_top1(embedding: JointEmbedding, corpus: Corpus, labels: list[str] | None = None) -> float:
    """Top-1 accuracy of "The sound of X" over `labels` (default: all the corpus's labels) on its clips."""
    labels = labels or corpus.label_names
    keep = [i for i, lab in enumerate(corpus.labels) if lab in labels]
    if not keep:
        return float("nan")
    audio = embed_clips(embedding, equal_length([corpus.waves[i] for i in keep]))
    text = embedding.embed_text([PROMPT.format(lab) for lab in labels])[0]
    pred = (audio @ text.T).argmax(1)
    truth = torch.tensor([labels.index(corpus.labels[i]) for i in keep])
    return float((pred == truth).float().mean())


TARGETS = {"top1": 0.70, "mix2_both_in_top3": 0.70}  # issue 4


def synthmusic_clips(data_cfg, split: str = "test") -> tuple[list[np.ndarray], list[str]]:
    """Waves and classes of one SynthMUSIC-21 split (as `bimodal data build` rendered it)."""
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
    return equal_length(waves), [str(c) for c in df[col]]


def zero_shot_eval(
    embedding: JointEmbedding,
    waves: list[np.ndarray],
    labels: list[str],
    sample_rate: int,
    classes: tuple[str, ...] = CLASSES,
    mix_passes: int = 2,
    seed: int = 0,
) -> dict:
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
    metrics = pd.DataFrame(
        [
            {"metric": "top1", "value": float(top1.float().mean()), "n": n, "target": TARGETS["top1"]},
            {"metric": "top3", "value": float(top3.float().mean()), "n": n, "target": float("nan")},
            {
                "metric": "mix2_both_in_top3",
                "value": float(in3.float().mean()) if m else float("nan"),
                "n": m,
                "target": TARGETS["mix2_both_in_top3"],
            },
            {
                "metric": "mix2_both_in_top2",
                "value": float(in2.float().mean()) if m else float("nan"),
                "n": m,
                "target": float("nan"),
            },
            {
                "metric": "mix2_top1_is_a_source",
                "value": float(either1.float().mean()) if m else float("nan"),
                "n": m,
                "target": float("nan"),
            },
            # the contrastive loss of a source's prompt on the unseparated mixture minus that on the clean source
            # (nats, the model's temperature): the room L_CNT has to reward separating it; small = a lenient teacher
            {"metric": "mix2_cnt_gap_nats", "value": float(cnt_gap), "n": 2 * m, "target": float("nan")},
        ]
    )
    metrics["met"] = [
        ("yes" if v >= t else "no") if not math.isnan(t) else "" for v, t in zip(metrics["value"], metrics["target"])
    ]
    confused = []
    for i in range(len(classes)):
        off = confusion[i].copy()
        off[i] = 0
        confused.append(classes[int(off.argmax())] if off.max() > 0 else "")
    per_class = pd.DataFrame(
        {
            "class": classes,
            "n": confusion.sum(1),
            "top1": [confusion[i, i] / max(1, confusion[i].sum()) for i in range(len(classes))],
            "most_confused_with": confused,
        }
    )
    return {"metrics": metrics, "confusion": confusion, "per_class": per_class, "classes": classes}


def metric_value(metric: str, value: float) -> str:
    """A zero-shot metric as text: nats for the L_CNT gap, a percentage for the rates."""
    return f"{value:.2f} nats" if metric.endswith("_nats") else f"{value:.1%}"


def checkpoint_label(cfg: Config) -> str:
    e = cfg.embedding
    if e.backend == "surrogate":
        if e.checkpoint in shipped_surrogates():
            return f"shipped bimodal/assets/{e.checkpoint}.pt"
        return str(Path(e.checkpoint)) if e.checkpoint else f"shipped bimodal/assets/{ASSET.name}"
    return f"LAION-CLAP {e.audio_model} {e.checkpoint}"


def results_suffix(profile: str, checkpoint: str = "") -> str:
    """Suffix of a zero-shot evaluation's results and figure files: _<profile> unless quick (the embedded
    default), then _<name> of the shipped surrogate ("" = the default asset, by its own name, so that a change of
    default renames no file), or _file_<stem> for a checkpoint file (a retrained surrogate, LAION-CLAP weights)."""
    suffix = "" if profile == "quick" else f"_{profile}"
    if checkpoint in shipped_surrogates() or not checkpoint:
        return suffix + f"_{checkpoint or ASSET.stem}"
    return suffix + "_file_" + re.sub(r"[^a-z0-9]+", "_", Path(checkpoint).stem.lower()).strip("_")


def write_results(
    result: dict, cfg: Config, results_dir: str | Path | None = None, figures_dir: str | Path | None = None
) -> dict[str, Path]:
    """results/embedding_zeroshot{,_per_class}<suffix>.csv + .md and figures/01_confusion<suffix>.png
    (:func:`results_suffix`)."""
    suffix = results_suffix(cfg.profile, cfg.embedding.checkpoint)
    rdir = Path(results_dir) if results_dir is not None else results_root(cfg.profile)
    fdir = Path(figures_dir) if figures_dir is not None else figures_root(cfg.profile)
    rdir.mkdir(parents=True, exist_ok=True)
    metrics = result["metrics"].assign(
        profile=cfg.profile, backend=cfg.embedding.backend, checkpoint=checkpoint_label(cfg)
    )
    paths = {
        "csv": rdir / f"embedding_zeroshot{suffix}.csv",
        "per_class": rdir / f"embedding_zeroshot_per_class{suffix}.csv",
        "md": rdir / f"embedding_zeroshot{suffix}.md",
        "figure": fdir / f"01_confusion{suffix}.png",
    }
    metrics.to_csv(paths["csv"], index=False, float_format="%.4f")
    result["per_class"].to_csv(paths["per_class"], index=False, float_format="%.4f")
    lines = [
        f"# Zero-shot scores of the joint embedding on SynthMUSIC-21 test clips ({cfg.profile} profile)",
        "",
        f'Backend: {cfg.embedding.backend} ({checkpoint_label(cfg)}). Prompts: "{PROMPT}" over the 21 '
        f"classes. Mixtures: (a + b) / 2 of two test clips of different classes, seeded. Written by "
        f"`bimodal embedding eval --profile {cfg.profile}`.",
        "",
        "| metric | value | n | target | met |",
        "|---|---|---|---|---|",
    ]
    for r in metrics.itertuples():
        target = "" if math.isnan(r.target) else f"≥ {r.target:.0%}"
        lines.append(f"| {r.metric} | {metric_value(r.metric, r.value)} | {r.n} | {target} | {r.met} |")
    lines += ["", "| class | n | top-1 | most confused with |", "|---|---|---|---|"]
    for r in result["per_class"].itertuples():
        lines.append(f"| {r._1} | {r.n} | {r.top1:.0%} | {r.most_confused_with} |")
    paths["md"].write_text("\n".join(lines) + "\n")
    import matplotlib.pyplot as plt

    fig = plot_confusion(
        result["confusion"],
        result["classes"],
        paths["figure"],
        f"Zero-shot confusion, {cfg.embedding.backend}, SynthMUSIC-21 test ({cfg.profile})",
    )
    plt.close(fig)
    return paths


def evaluate(
    cfg: Config,
    checkpoint: str | Path | None = None,
    *,
    write: bool = True,
    results_dir: str | Path | None = None,
    figures_dir: str | Path | None = None,
) -> dict:
    """Zero-shot evaluation of the configured embedding (or of `checkpoint`, a surrogate file) on the profile's
    SynthMUSIC-21 test clips; writes results/ and figures/ when `write`."""
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
