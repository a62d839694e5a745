"""Figures of the paper from run folders and results tables (matplotlib, Agg-safe). Every function returns the
figure and, given `out`, saves it (PNG) under figures/."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch


def _save(fig, out, dpi: int = 110):
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=dpi, bbox_inches="tight")
    return fig


def loss_curves(run_dirs: dict[str, str | Path], out=None, title: str = "Training losses (Figure 6)"):
    """Per-epoch means of each logged loss component (steps.csv) for each run; reconstruction terms (url, crl,
    sup_url) on the left axis, the contrastive term on the right — as Figure 6 plots them."""
    fig, axes = plt.subplots(1, len(run_dirs), figsize=(5 * len(run_dirs), 3.4), squeeze=False)
    for ax, (label, run_dir) in zip(axes[0], run_dirs.items()):
        steps = pd.read_csv(Path(run_dir) / "steps.csv")
        per_epoch = steps.groupby("epoch").mean(numeric_only=True)
        recon = [c for c in ("url", "crl", "sup_url") if c in per_epoch]
        for c in recon:
            ax.plot(per_epoch.index + 1, per_epoch[c], marker="o", ms=3, label=f"L_{c.upper()}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("reconstruction loss")
        ax.set_title(label)
        if "cnt" in per_epoch:
            ax2 = ax.twinx()
            ax2.plot(per_epoch.index + 1, per_epoch["cnt"], color="tab:red", marker="s", ms=3, label="L_CNT")
            ax2.set_ylabel("contrastive loss", color="tab:red")
        ax.legend(loc="upper right", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, out)


def validation_curves(
    run_dirs: dict[str, str | Path],
    out=None,
    title: str = "SDR / SIR / SAR over training, validation set (cf. Figure 7)",
):
    """Figure 7 plots test metrics over training; we never look at the test set before the end, so these are the
    per-epoch *validation* metrics (epochs.csv)."""
    metrics = ["sdr", "sir", "sar"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for label, run_dir in run_dirs.items():
        epochs = pd.read_csv(Path(run_dir) / "epochs.csv")
        for ax, m in zip(axes, metrics):
            col = f"val_{m}_mean"
            if col in epochs:
                ax.plot(epochs["epoch"] + 1, epochs[col], marker="o", ms=3, label=label)
    for ax, m in zip(axes, metrics):
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{m.upper()} (dB)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, out)


def cnt_against_reference(groups: dict[tuple, list[dict]], reference: pd.DataFrame | None = None, out=None):
    """Left: the proposed runs' training L_CNT per epoch (mean over seeds, one line per K) beside what the teacher
    charges the clean sources at that K (dashed; results/cnt_reference.csv). Right: validation SDR per epoch of
    proposed (solid) and mix-and-separate (dotted) at each K. groups: bimodal.experiments.report.headline_records;
    runs without a recorded curve are left out."""
    fig, (ax_cnt, ax_val) = plt.subplots(1, 2, figsize=(12, 3.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]

    def mean_curve(recs, column):
        curves = [pd.DataFrame(r["epochs"]).set_index("epoch")[column] for r in recs if r.get("epochs")]
        curves = [c for c in curves if c.notna().any()]
        return (pd.concat(curves, axis=1).mean(axis=1), len(curves)) if curves else (None, 0)

    ks = sorted({k for (method, k, _) in groups if method in ("proposed", "mix_and_separate")})
    for i, k in enumerate(ks):
        color = colors[i % len(colors)]
        cnt, n = mean_curve(groups.get(("proposed", k, None), []), "train_cnt")
        if cnt is not None:
            ax_cnt.plot(cnt.index + 1, cnt.values, marker="o", ms=3, color=color, label=f"proposed, K = {k} (n={n})")
        if reference is not None and k in set(reference["K"]):
            clean = float(reference.loc[reference["K"] == k, "L_CNT clean"].iloc[0])
            ax_cnt.axhline(clean, color=color, ls="--", lw=1, label=f"clean sources, K = {k}")
        for method, ls in (("proposed", "-"), ("mix_and_separate", ":")):
            val, n = mean_curve(groups.get((method, k, None), []), "val_sdr_mean")
            if val is not None:
                label = f"{method.replace('_', '-')}, K = {k} (n={n})"
                ax_val.plot(val.index + 1, val.values, ls=ls, marker="o", ms=3, color=color, label=label)
    ax_cnt.set(xlabel="epoch", ylabel="L_CNT (nats)", title="Training L_CNT vs the clean sources' L_CNT")
    ax_val.set(xlabel="epoch", ylabel="validation SDR (dB)", title="Validation SDR over training")
    for ax in (ax_cnt, ax_val):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return _save(fig, out)


def figure1_right(df: pd.DataFrame, out=None):
    """SDR vs sources per training mixture: paper (dashed, hollow) beside here (solid); df is results/figure1.csv."""
    fig, ax = plt.subplots(figsize=(8.5, 4))
    ks = ["2-source", "3-source", "4-source"]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, row in enumerate([r for r in dict.fromkeys(df["row"]) if r != "Supervised"]):
        sel = df[df["row"] == row].set_index("column").reindex(ks)
        x = np.arange(2, 5)
        ax.plot(x, sel["paper"], "--", marker="o", mfc="none", color=colors[i % 10], label=f"{row} (paper)")
        if "here_mean" in sel and sel["here_mean"].notna().any():
            ax.errorbar(
                x,
                sel["here_mean"],
                yerr=sel["here_std"].fillna(0),
                marker="o",
                color=colors[i % 10],
                label=f"{row} (here)",
            )
    sup = df[df["row"] == "Supervised"]
    if not sup.empty:
        ax.axhline(sup["paper"].iloc[0], color="k", ls=":", label="Supervised (paper)")
        if "here_mean" in sup and pd.notna(sup["here_mean"].iloc[0]):
            mean, std = sup["here_mean"].iloc[0], sup["here_std"].iloc[0]
            ax.axhline(mean, color="k", ls="-", lw=1, label="Supervised (here, ± 1 std)")
            if pd.notna(std):
                ax.axhspan(mean - std, mean + std, color="k", alpha=0.08)
    ax.set_xticks([2, 3, 4])
    ax.set_xlabel("sources per training mixture")
    ax.set_ylabel("SDR on 2-source test mixtures (dB)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)  # outside the data
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, out)


def log_spectrogram(wave, n_fft: int = 1022, hop: int = 256) -> np.ndarray:
    wave = torch.as_tensor(np.asarray(wave, dtype=np.float32))
    spec = torch.stft(wave, n_fft, hop, window=torch.hann_window(n_fft), return_complex=True).abs()
    return 20 * np.log10(spec.numpy() + 1e-6)


def spectrogram_grid(rows: dict[str, dict[str, np.ndarray]], sample_rate: int, out=None, title: str = ""):
    """rows: {row label: {column label: waveform [T]}} -> a grid of log-magnitude spectrograms (Figures 8–11)."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows.values())
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.6 * n_cols, 2.2 * n_rows), squeeze=False)
    for i, (row, cols) in enumerate(rows.items()):
        for j, (col, wave) in enumerate(cols.items()):
            ax = axes[i][j]
            spec = log_spectrogram(wave)
            ax.imshow(
                spec,
                origin="lower",
                aspect="auto",
                vmin=spec.max() - 80,
                vmax=spec.max(),
                extent=[0, len(wave) / sample_rate, 0, sample_rate / 2000],
                cmap="magma",
            )
            ax.set_title(f"{row}\n{col}" if j == 0 else col, fontsize=8)
            ax.tick_params(labelsize=6)
        for j in range(len(cols), n_cols):
            axes[i][j].axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    # many noisy spectrogram panels compress badly (the 21-class grid: 1.9 MB at 110 dpi): keep committed PNGs small
    return _save(fig, out, dpi=110 if n_rows * n_cols <= 16 else 64)
