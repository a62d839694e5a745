"""Loading a dataset's clip table: SynthMUSIC-21 and the embedding corpus as `bimodal data build` rendered them, or a
common-format index CSV of real data (bimodal.datasets.index). Loading never renders: a dataset that is not built
is a :class:`DatasetNotBuilt` error naming the command that builds it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bimodal.config import PROFILES, ConfigError, DataConfig, get_config
from bimodal.datasets.instruments import embedding_labels
from bimodal.datasets.labels import CLASSES
from bimodal.datasets.layout import (
    EMBEDDING_COLUMNS,
    SEPARATION_COLUMNS,
    absolute,
    clip_path,
    embedding_dir,
    synthmusic21_dir,
)
from bimodal.datasets.soundfonts import SOUNDFONT_SILENT_LABELS


class DatasetNotBuilt(FileNotFoundError):
    """A generated dataset (or some of its clips) is not on disk; the message names the command that builds it."""


# the data fields a rendered dataset depends on (its folder key and its size)
_BUILD_FIELDS = ("sample_rate", "clip_samples", "seed", "clips_per_class", "embedding_clips_per_label")


def build_command(cfg: DataConfig, what: str = "separation", soundfonts: tuple[str, ...] = ()) -> str:
    """The `bimodal data build` command line that renders what `cfg` needs: the smallest profile whose data
    settings cover it, plus `--set` for the fields that still differ."""

    def covers(p: str) -> bool:
        d = get_config(p).data
        return (
            all(getattr(d, f) == getattr(cfg, f) for f in ("sample_rate", "clip_samples", "seed"))
            and d.clips_per_class >= cfg.clips_per_class
            and d.embedding_clips_per_label >= cfg.embedding_clips_per_label
        )

    profile = next((p for p in PROFILES if covers(p)), None)
    sets = []
    if profile is None:
        profile = "quick"
        d = get_config(profile).data
        sets = [f"--set data.{f}={getattr(cfg, f)}" for f in _BUILD_FIELDS if getattr(d, f) != getattr(cfg, f)]
    if soundfonts and list(soundfonts) != get_config(profile).embedding.soundfont_list:
        sets.append(f"--set embedding.soundfonts={','.join(soundfonts)}")
    parts = ["bimodal data build", f"--profile {profile}", f"--what {what}", *sets]
    if cfg.root:
        parts.append(f"--root {cfg.root}")
    return " ".join(parts)


def built_rows(
    out_dir: Path, labels: tuple[str, ...], per_label: int, columns: list[str], label_col: str, command: str, what: str
) -> pd.DataFrame:
    """The manifest rows of labels × range(per_label) in out_dir, with absolute paths, checked to exist on disk."""
    manifest_path = out_dir / "manifest.csv"
    if not manifest_path.is_file():
        raise DatasetNotBuilt(f"{what} is not built: {manifest_path} does not exist; run `{command}`")
    df = pd.read_csv(manifest_path, keep_default_na=False)
    wanted = [clip_path(label, idx) for label in labels for idx in range(per_label)]
    rows = df.set_index("path").reindex(wanted)
    missing = [p for p, ok in zip(wanted, rows[label_col].notna()) if not ok or not (out_dir / p).is_file()]
    if missing:
        raise DatasetNotBuilt(
            f"{what} in {out_dir} lacks {len(missing)} of its {len(wanted)} clips (e.g. {missing[0]}); run `{command}`"
        )
    rows = rows.reset_index()[columns]
    return absolute(rows, out_dir)


def synthmusic21_manifest(cfg: DataConfig) -> pd.DataFrame:
    """The rendered SynthMUSIC-21 clips cfg names (cfg.clips_per_class per class), absolute paths."""
    return built_rows(
        synthmusic21_dir(cfg),
        CLASSES,
        cfg.clips_per_class,
        SEPARATION_COLUMNS,
        "cls",
        build_command(cfg, "separation"),
        f"SynthMUSIC-21 ({cfg.clips_per_class} clips per class)",
    )


def embedding_corpus_manifest(cfg: DataConfig, soundfont: str = "timgm6mb") -> pd.DataFrame:
    """The rendered embedding corpus in one corpus SoundFont (cfg.embedding_clips_per_label clips per label)."""
    silent = SOUNDFONT_SILENT_LABELS.get(soundfont, ())
    labels = tuple(lab for lab in embedding_labels() if lab not in silent)
    return built_rows(
        embedding_dir(cfg, soundfont),
        labels,
        cfg.embedding_clips_per_label,
        EMBEDDING_COLUMNS,
        "label",
        build_command(cfg, "embedding", (soundfont,)),
        f"the embedding corpus in {soundfont} ({cfg.embedding_clips_per_label} clips per label)",
    )


def splits_share_no_melody(manifest: pd.DataFrame) -> bool:
    """True when no melody source (group) appears in two splits."""
    col = "group" if "group" in manifest.columns else "melody_id"
    return bool((manifest.groupby(col)["split"].nunique() <= 1).all())


def assign_subsets(manifest: pd.DataFrame, fraction: float, seed: int) -> pd.Series:
    """Semi-supervised partition of the train clips: per class, a seeded `fraction` are "single" (usable as
    single sources), the rest "mixture"; val/test rows get ""."""
    subset = pd.Series([""] * len(manifest), index=manifest.index, dtype=object)
    train = manifest[manifest["split"] == "train"]
    rng = np.random.default_rng([seed, 31337])
    for _, rows in sorted(train.groupby("cls"), key=lambda kv: kv[0]):
        order = rows.index.to_numpy()[rng.permutation(len(rows))]
        n_single = int(round(fraction * len(rows)))
        if fraction > 0 and len(rows) > 1:
            n_single = min(max(n_single, 1), len(rows) - 1)  # both partitions keep every class
        subset.loc[order[:n_single]] = "single"
        subset.loc[order[n_single:]] = "mixture"
    return subset


def check_index_files(df: pd.DataFrame, index: Path) -> None:
    """Every clip an index names exists and opens as audio, checked when the index is loaded (before training), not
    when an epoch first samples it: ConfigError naming the index, the number of bad files and the first of them.
    Opening reads the header only (soundfile.info), with a progress bar over a large index."""
    import soundfile as sf
    from tqdm.auto import tqdm

    paths = df["path"].astype(str).tolist()
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise ConfigError(f"{index}: {len(missing)} of {len(df)} indexed audio files do not exist, e.g. {missing[0]}")
    unreadable = []
    for p in tqdm(paths, desc=f"checking {Path(index).name}", disable=len(paths) < 2000, leave=False):
        try:
            sf.info(p)
        except (RuntimeError, sf.LibsndfileError) as exc:  # not audio, truncated header, unknown format
            unreadable.append((p, str(exc).splitlines()[0]))
    if unreadable:
        path, why = unreadable[0]
        raise ConfigError(
            f"{index}: {len(unreadable)} of {len(df)} indexed audio files do not open as audio, e.g. {path} ({why})"
        )


def load_manifest(cfg: DataConfig) -> pd.DataFrame:
    """The clip table of cfg.dataset: the rendered SynthMUSIC-21 (DatasetNotBuilt if it is not) or a common-format
    index CSV.

    Columns: path (absolute), cls, melody_id (source id for real data), split (train|val|test), sha256, subset
    ("single" | "mixture" for train rows by cfg.single_source_fraction; "" otherwise), + corpus-specific ones."""
    if cfg.dataset == "synthmusic21":
        df = synthmusic21_manifest(cfg)
    else:
        path = Path(cfg.dataset)
        if not path.is_file():
            raise ConfigError(
                f"config field 'data.dataset': {cfg.dataset!r} is neither 'synthmusic21' nor an "
                f"index CSV file (build one with `bimodal data index ...`)"
            )
        df = pd.read_csv(path, keep_default_na=False)
        missing = {"path", "cls", "split"} - set(df.columns)
        if missing:
            raise ConfigError(f"{path}: index lacks columns {sorted(missing)} (needs path, cls, split)")
        df = df[df["cls"].astype(str) != ""].copy()
        if "melody_id" not in df.columns:
            df["melody_id"] = df["source_id"] if "source_id" in df.columns else df["path"]
        if "sha256" not in df.columns:
            df["sha256"] = ""
        df = absolute(df, path.parent)
        check_index_files(df, path)
    df["subset"] = assign_subsets(df, cfg.single_source_fraction, cfg.seed)
    return df
