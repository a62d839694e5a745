"""Datasets: the embedded SynthMUSIC-21, the disjoint joint-embedding corpus, real-dataset indexes and the
mixture samplers of Sections 3.2–3.4 / Algorithm 1 / Table 6.

Layout under ``data_root(cfg.root)``::

    synthmusic21/<key>/clips/<class>/<class>_<idx>.wav   + manifest.csv   (key = rate, clip length, seed, version)
    embedding_corpus/<key>/clips/<label>/<label>_<idx>.wav + manifest.csv

A clip is a pure function of (seed, corpus, label, idx), so a build is incremental (a bigger profile renders only
the missing clips) and idempotent, and the same seed gives identical bytes. The split of a clip follows its index
(`SPLIT_PATTERN`: 70/10/20 train/val/test in every class) and its melody is drawn from that split's melodies, so
splits are disjoint by melody source (a chorale's soprano and bass lines count as one source).
"""
from __future__ import annotations

import argparse
import io
import json
import re
import sys
import time
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch

from bimodal.audio import AudioError, audio_info, load_audio, save_audio
from bimodal.config import ConfigError, DataConfig, get_config
from bimodal.synth import (CLASSES, Melody, captions_for, embedding_labels, group_unit, melody_pool,
                           SOUNDFONT_SILENT_LABELS, corpus_soundfont, mixture_prompt, render_clip, single_prompt, slug)
from bimodal.utils import atomic_write_bytes, data_root, file_sha256, results_root

__all__ = ["CLASSES", "single_prompt", "mixture_prompt", "build_synthmusic21", "load_manifest",
           "build_embedding_corpus", "MixtureDataset", "collate_mixtures", "EvalMixtureDataset", "split_caption",
           "index_music21", "index_vggsound", "index_audiocaps", "make_composition", "cli"]

SYNTH_VERSION = 2  # bump when rendering changes: the dataset key changes and nothing stale is reused
COMPOSITIONS = Path(__file__).parent / "compositions"

# Split of clip idx within its class: idx % 10 -> split. Test and val come early so that even the 6-clip smoke
# profile has every split (train 0,3,5 / test 1,4 / val 2).
SPLIT_PATTERN = ("train", "test", "val", "train", "test", "train", "train", "train", "train", "train")
MELODY_SPLITS = (("train", 0.7), ("val", 0.8), ("test", 1.0))  # cumulative shares of melody groups
EMBEDDING_VAL_EVERY = 10  # embedding corpus: idx % 10 == 1 -> val (smoke's 2 clips/label keep one), val melodies


def clip_split(idx: int) -> str:
    return SPLIT_PATTERN[idx % len(SPLIT_PATTERN)]


def melody_split(group: str, seed: int) -> str:
    u = group_unit(group, f"split{seed}")
    return next(name for name, upper in MELODY_SPLITS if u < upper)


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    atomic_write_bytes(path, buf.getvalue().encode())


# ------------------------------------------------------------------------------------------------------------------
# SynthMUSIC-21 and the embedding corpus
# ------------------------------------------------------------------------------------------------------------------

def synth_key(cfg: DataConfig) -> str:
    return f"sr{cfg.sample_rate}_n{cfg.clip_samples}_seed{cfg.seed}_v{SYNTH_VERSION}"


def synthmusic21_dir(cfg: DataConfig) -> Path:
    return data_root(cfg.root) / "synthmusic21" / synth_key(cfg)


def embedding_dir(cfg: DataConfig, soundfont: str = "timgm6mb") -> Path:
    """Folder of the embedding corpus rendered with one corpus SoundFont (TimGM6mb keeps the folder it always had)."""
    base = data_root(cfg.root) / "embedding_corpus" / synth_key(cfg)
    return base if soundfont == "timgm6mb" else base.with_name(f"{base.name}-{soundfont}")


@lru_cache(maxsize=8)
def _melodies_by_split(corpus: str, seed: int) -> dict[str, tuple[Melody, ...]]:
    pool = melody_pool(corpus)
    if corpus == "embedding":
        return {"train": tuple(m for m in pool if group_unit(m.group, "embsplit") >= 0.1),
                "val": tuple(m for m in pool if group_unit(m.group, "embsplit") < 0.1)}
    out: dict[str, list[Melody]] = {"train": [], "val": [], "test": []}
    for m in pool:
        out[melody_split(m.group, seed)].append(m)
    return {k: tuple(v) for k, v in out.items()}


def _render_one(job: tuple) -> dict:
    """Render, save and describe one clip (module-level so worker processes can run it)."""
    corpus, cfg, label, idx, out_dir, sf2 = job
    torch.set_num_threads(1)
    rel = f"clips/{slug(label)}/{slug(label)}_{idx:05d}.wav"
    path = out_dir / rel
    if corpus == "separation":
        split = clip_split(idx)
    else:
        split = "val" if idx % EMBEDDING_VAL_EVERY == 1 else "train"
    # the label's position in the fixed label list, not in the requested subset, so a subset build gives the same
    # bytes
    label_id = (CLASSES if corpus == "separation" else embedding_labels()).index(label)
    seed_seq = [cfg.seed, 0 if corpus == "separation" else 1, label_id, idx]
    wave, info = render_clip(label, _melodies_by_split(corpus, cfg.seed)[split], seed_seq,
                             n_samples=cfg.clip_samples, sample_rate=cfg.sample_rate, sf2=sf2)
    save_audio(path, wave, cfg.sample_rate)
    row = {"path": rel, "cls" if corpus == "separation" else "label": label, "idx": idx,
           "melody_id": info["melody_id"], "group": info["group"], "split": split, "tempo": info["tempo"],
           "sha256": file_sha256(path)}
    if corpus == "embedding":
        caption, variants = captions_for(label, info["tempo"], np.random.default_rng(seed_seq + [7]))
        row.update(caption=caption, captions="|".join(variants))
    return row


def _build(corpus: str, cfg: DataConfig, labels: tuple[str, ...], per_label: int, out_dir: Path,
           columns: list[str], sf2: str | None, verbose: bool, workers: int = 1) -> pd.DataFrame:
    """Render what is missing of labels × range(per_label) into out_dir; return the manifest rows asked for.
    Every clip is a pure function of its job, so `workers` > 1 processes give the same bytes."""
    manifest_path = out_dir / "manifest.csv"
    old = (pd.read_csv(manifest_path, keep_default_na=False) if manifest_path.is_file()
           else pd.DataFrame(columns=columns))
    have = {row["path"]: row for row in old.to_dict("records")}
    wanted = [(label, idx, f"clips/{slug(label)}/{slug(label)}_{idx:05d}.wav") for label in labels
              for idx in range(per_label)]
    jobs = [(corpus, cfg, label, idx, out_dir, sf2) for label, idx, rel in wanted
            if not (rel in have and (out_dir / rel).is_file())]
    t0 = time.time()

    def done(row: dict, n: int) -> None:
        have[row["path"]] = row
        if n % 100 == 0:
            _write_csv(pd.DataFrame(list(have.values()), columns=columns), manifest_path)
            if verbose:
                print(f"  {corpus}: {n}/{len(jobs)} new clips, {time.time() - t0:.0f} s", flush=True)

    if workers > 1 and len(jobs) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            for n, row in enumerate(pool.map(_render_one, jobs, chunksize=8), 1):
                done(row, n)
    else:
        for n, job in enumerate(jobs, 1):
            done(_render_one(job), n)
    if jobs or not manifest_path.is_file():
        _write_csv(pd.DataFrame(list(have.values()), columns=columns), manifest_path)
    if verbose:
        print(f"{corpus}: {len(wanted)} clips in {out_dir} ({len(jobs)} rendered now, {time.time() - t0:.1f} s)")
    return pd.DataFrame([have[rel] for _, _, rel in wanted], columns=columns)


_SEP_COLUMNS = ["path", "cls", "idx", "melody_id", "group", "split", "tempo", "sha256"]
_EMB_COLUMNS = ["path", "label", "idx", "caption", "captions", "melody_id", "group", "split", "tempo", "sha256"]


def build_synthmusic21(cfg: DataConfig, profile: str | None = None, *, verbose: bool = True,
                       classes: tuple[str, ...] = CLASSES, workers: int = 1) -> pd.DataFrame:
    """Render (incrementally) cfg.clips_per_class clips of each class; returns the manifest with absolute paths.

    `profile` only labels the progress output (the clips depend on cfg alone); `workers` > 1 renders in that many
    processes (same bytes)."""
    out_dir = synthmusic21_dir(cfg)
    if verbose:
        print(f"SynthMUSIC-21{f' ({profile})' if profile else ''}: {len(classes)} classes x {cfg.clips_per_class} "
              f"clips -> {out_dir}")
    df = _build("separation", cfg, tuple(classes), cfg.clips_per_class, out_dir, _SEP_COLUMNS, None, verbose,
                workers)
    return _absolute(df, out_dir)


def build_embedding_corpus(profile: str, root: Path | str | None = None, *, verbose: bool = True,
                           labels: tuple[str, ...] | None = None, workers: int = 1,
                           soundfont: str = "timgm6mb") -> pd.DataFrame:
    """The joint-embedding pretraining corpus in one SoundFont (`soundfont`, a name of
    bimodal.synth.CORPUS_SOUNDFONTS; never FluidR3): the 21 classes + extra GM / percussion / SFX labels, varied
    captions, melodies disjoint from SynthMUSIC-21's. Every SoundFont renders the same scores, so its clips differ
    from TimGM6mb's in timbre only. Columns: path (absolute), label, caption, captions ('|'-joined variants),
    melody_id, split (train|val), idx, group, tempo, sha256."""
    cfg = get_config(profile).data
    if root is not None:
        cfg.root = str(root)
    sf2 = corpus_soundfont(soundfont)
    out_dir = embedding_dir(cfg, soundfont)
    silent = SOUNDFONT_SILENT_LABELS.get(soundfont, ())
    labels = tuple(lab for lab in (labels or embedding_labels()) if lab not in silent)
    if verbose:
        print(f"embedding corpus ({profile}, {soundfont}): {len(labels)} labels x {cfg.embedding_clips_per_label} "
              f"clips -> {out_dir}")
    df = _build("embedding", cfg, labels, cfg.embedding_clips_per_label, out_dir, _EMB_COLUMNS, str(sf2), verbose,
                workers)
    return _absolute(df, out_dir)


def _absolute(df: pd.DataFrame, base: Path) -> pd.DataFrame:
    df = df.copy()
    df["path"] = [str(base / p) if not Path(p).is_absolute() else p for p in df["path"]]
    return df.reset_index(drop=True)


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


def load_manifest(cfg: DataConfig, *, verbose: bool = False) -> pd.DataFrame:
    """The clip table of cfg.dataset: SynthMUSIC-21 (built if needed) or a common-format index CSV.

    Columns: path (absolute), cls, melody_id (source id for real data), split (train|val|test), sha256, subset
    ("single" | "mixture" for train rows by cfg.single_source_fraction; "" otherwise), + corpus-specific ones."""
    if cfg.dataset == "synthmusic21":
        df = build_synthmusic21(cfg, verbose=verbose)
    else:
        path = Path(cfg.dataset)
        if not path.is_file():
            raise ConfigError(f"config field 'data.dataset': {cfg.dataset!r} is neither 'synthmusic21' nor an "
                              f"index CSV file (build one with `bimodal data index ...`)")
        df = pd.read_csv(path, keep_default_na=False)
        missing = {"path", "cls", "split"} - set(df.columns)
        if missing:
            raise ConfigError(f"{path}: index lacks columns {sorted(missing)} (needs path, cls, split)")
        df = df[df["cls"].astype(str) != ""].copy()
        if "melody_id" not in df.columns:
            df["melody_id"] = df["source_id"] if "source_id" in df.columns else df["path"]
        if "sha256" not in df.columns:
            df["sha256"] = ""
        df = _absolute(df, path.parent)
    df["subset"] = assign_subsets(df, cfg.single_source_fraction, cfg.seed)
    return df


# ------------------------------------------------------------------------------------------------------------------
# Mixture sampling
# ------------------------------------------------------------------------------------------------------------------

def _read_segment(path: str, start: int, length: int, sample_rate: int) -> np.ndarray:
    """float32 [length] from `start` (zero-padded past the end). Reads only the window when the file is already
    mono at the right rate (SynthMUSIC-21); otherwise loads through bimodal.audio.load_audio."""
    info = sf.info(path)
    if info.samplerate == sample_rate and info.channels == 1:
        with sf.SoundFile(path) as f:
            f.seek(min(start, max(0, info.frames - 1)))
            wave = f.read(length, dtype="float32")
    else:
        wave = load_audio(path, sample_rate)[start:start + length]
    if len(wave) < length:
        wave = np.pad(wave, (0, length - len(wave)))
    return wave


def _frames(path: str, sample_rate: int) -> int:
    sr, frames, _ = audio_info(path)
    return int(frames * sample_rate / sr)


class MixtureDataset(torch.utils.data.Dataset):
    """Training mixtures-of-mixtures (Sections 3.2–3.4, Algorithm 1).

    Item i of epoch e is a pure function of (seed, epoch, i), so a resumed run sees the same data. Each item holds
    N mixtures of K single sources, all N·K classes distinct; every source is a random crop with a random gain in
    [0.5, 1.5] (clipped to ±1), divided once by N·K so the MoM stays within ±1. K=1 gives N single sources
    (the supervised case)."""

    def __init__(self, cfg: DataConfig, manifest: pd.DataFrame, split: str = "train", *, k_sources: int | None = None,
                 n_mix: int | None = None, subset: str = "all", seed: int = 0, items: int | None = None):
        if split not in ("train", "val", "test"):
            raise ValueError(f"MixtureDataset: split must be train, val or test, got {split!r}")
        if subset not in ("all", "single", "mixture"):
            raise ValueError(f"MixtureDataset: subset must be all, single or mixture, got {subset!r}")
        self.cfg = cfg
        self.k = int(k_sources or cfg.k_sources)
        self.n = int(n_mix or cfg.n_mix)
        self.seed = int(seed)
        self.epoch = 0
        self.T = cfg.segment_samples
        rows = manifest[manifest["split"] == split]
        if subset != "all":
            if "subset" not in rows.columns or not (rows["subset"] == subset).any():
                raise ValueError(f"MixtureDataset: no {split} clips in subset {subset!r}; set "
                                 f"data.single_source_fraction > 0 (load_manifest assigns the subsets)")
            rows = rows[rows["subset"] == subset]
        self.by_class: dict[str, list[str]] = {c: sorted(g["path"].tolist()) for c, g in rows.groupby("cls")}
        self.classes = sorted(self.by_class)
        if len(self.classes) < self.n * self.k:
            raise ValueError(f"MixtureDataset: {self.n} mixtures x {self.k} sources need {self.n * self.k} distinct "
                             f"classes; the {split}/{subset} clips have {len(self.classes)}")
        self.items = int(items or cfg.train_items_per_epoch)
        self._frames: dict[str, int] = {}

    def __len__(self) -> int:
        return self.items

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _n_frames(self, path: str) -> int:
        if path not in self._frames:
            self._frames[path] = _frames(path, self.cfg.sample_rate)
        return self._frames[path]

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.items:
            raise IndexError(i)
        rng = np.random.default_rng([self.seed, self.epoch, int(i)])
        N, K, T = self.n, self.k, self.T
        picks = rng.choice(len(self.classes), size=N * K, replace=False)
        sources = np.zeros((N, K, T), dtype=np.float32)
        classes, paths = [], []
        for j, ci in enumerate(picks):
            cls = self.classes[ci]
            clips = self.by_class[cls]
            path = clips[int(rng.integers(len(clips)))]
            start = int(rng.integers(0, max(1, self._n_frames(path) - T + 1)))
            gain = rng.uniform(0.5, 1.5)
            wave = np.clip(_read_segment(path, start, T, self.cfg.sample_rate) * gain, -1.0, 1.0)
            sources[j // K, j % K] = wave / (N * K)
            classes.append(cls)
            paths.append(path)
        classes_nk = [classes[n * K:(n + 1) * K] for n in range(N)]
        return {"sources": torch.from_numpy(sources), "classes": classes_nk,
                "mixture_prompts": [mixture_prompt(c) for c in classes_nk],
                "source_prompts": [[single_prompt(x) for x in c] for c in classes_nk],
                "paths": [paths[n * K:(n + 1) * K] for n in range(N)]}


def collate_mixtures(batch: list[dict]) -> dict:
    """Stack "sources" to [B, N, K, T]; every other field becomes a list over the batch."""
    out = {"sources": torch.stack([b["sources"] for b in batch])}
    for key in batch[0]:
        if key != "sources":
            out[key] = [b[key] for b in batch]
    return out


EVAL_SETS = {"val2": ("val", 2), "test2": ("test", 2), "test3": ("test", 3)}


def composition_path(cfg: DataConfig, name: str) -> Path:
    return COMPOSITIONS / f"{name}_cpc{cfg.clips_per_class}_p{cfg.eval_passes}_seed{cfg.seed}.csv"


def make_composition(cfg: DataConfig, name: str, manifest: pd.DataFrame | None = None) -> pd.DataFrame:
    """The fixed, seeded evaluation mixtures `name` (val2 | test2 | test3): each clip of the split anchors
    cfg.eval_passes mixtures whose other sources are clips of distinct other classes of the same split; rows are
    in a seeded random order, so a truncated set is still balanced.

    Without `manifest`: SynthMUSIC-21 at cfg's size; needs no audio, since a clip's split follows from its index,
    and paths are relative to the dataset folder. With `manifest` (e.g. a real-dataset index): its rows, absolute
    paths. Columns: mixture_id, path_1..S, cls_1..S."""
    if name not in EVAL_SETS:
        raise ValueError(f"unknown evaluation set {name!r}; choose from {', '.join(EVAL_SETS)}")
    split, S = EVAL_SETS[name]
    if manifest is None:
        clips = [(c, f"clips/{slug(c)}/{slug(c)}_{i:05d}.wav") for c in CLASSES for i in range(cfg.clips_per_class)
                 if clip_split(i) == split]
    else:
        rows_ = manifest[manifest["split"] == split].sort_values(["cls", "path"])
        clips = list(zip(rows_["cls"].astype(str), rows_["path"].astype(str)))
    by_class: dict[str, list[str]] = {}
    for c, p in clips:
        by_class.setdefault(c, []).append(p)
    if len(by_class) < S:
        raise ValueError(f"evaluation set {name!r} needs {S} classes in the {split} split, found {len(by_class)}")
    classes = sorted(by_class)
    rng = np.random.default_rng([cfg.seed, 4242, list(EVAL_SETS).index(name)])
    rows = []
    for _ in range(cfg.eval_passes):
        for c, p in clips:
            others = [x for x in classes if x != c]
            chosen = [others[k] for k in rng.choice(len(others), size=S - 1, replace=False)]
            members = [(c, p)] + [(o, by_class[o][int(rng.integers(len(by_class[o])))]) for o in chosen]
            row = {}
            for s_, (cls, path) in enumerate(members, 1):
                row[f"path_{s_}"] = path
                row[f"cls_{s_}"] = cls
            rows.append(row)
    # shuffled, so that truncating (data.val_mixtures / data.test_mixtures) keeps a sample of every class
    rows = [rows[k] for k in rng.permutation(len(rows))]
    return pd.DataFrame([{"mixture_id": f"{name}_{j:05d}", **r} for j, r in enumerate(rows)])


def write_compositions(cfg: DataConfig, out_dir: Path = COMPOSITIONS) -> list[Path]:
    """(Re)write the shipped composition CSVs for cfg (`bimodal data compositions --profile P`)."""
    paths = []
    for name in EVAL_SETS:
        path = out_dir / composition_path(cfg, name).name
        _write_csv(make_composition(cfg, name), path)
        paths.append(path)
    return paths


class EvalMixtureDataset(torch.utils.data.Dataset):
    """A fixed evaluation set: "val2" (model selection), "test2", "test3" (never used to pick a checkpoint).

    Item: "sources" float32 [S, T] (centre crop of segment_samples, each scaled by 1/S so the mixture is their
    sum), "classes" [S], "source_prompts" [S], "mixture_prompt", "mixture_id". For SynthMUSIC-21 the composition
    is the shipped CSV of cfg's size (compositions/<name>_cpc<n>_p<passes>_seed<s>.csv; other sizes are generated
    with a warning); for an index CSV it is generated, seeded, from the index's val/test rows. val2 is truncated
    to cfg.val_mixtures, test sets to cfg.test_mixtures (0 = all)."""

    def __init__(self, cfg: DataConfig, name: str = "test2", manifest: pd.DataFrame | None = None):
        if name not in EVAL_SETS:
            raise ValueError(f"unknown evaluation set {name!r}; choose from {', '.join(EVAL_SETS)}")
        self.cfg, self.name = cfg, name
        self.S = EVAL_SETS[name][1]
        if cfg.dataset == "synthmusic21":
            self.base = synthmusic21_dir(cfg)
            shipped = composition_path(cfg, name)
            if shipped.is_file():
                comp = pd.read_csv(shipped, keep_default_na=False)
            else:
                warnings.warn(f"no shipped composition {shipped.name}; generating it for this configuration")
                comp = make_composition(cfg, name)
        else:
            self.base = Path(cfg.dataset).parent
            comp = make_composition(cfg, name, manifest if manifest is not None else load_manifest(cfg))
        limit = cfg.val_mixtures if name == "val2" else cfg.test_mixtures
        if limit and limit > 0:
            comp = comp.iloc[:limit]
        self.comp = comp.reset_index(drop=True)
        if cfg.dataset == "synthmusic21":
            needed = {p for s in range(1, self.S + 1) for p in self.comp[f"path_{s}"]}
            if not all((self.base / p).is_file() for p in needed):
                build_synthmusic21(cfg, verbose=False)

    def __len__(self) -> int:
        return len(self.comp)

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self.comp):
            raise IndexError(i)
        row = self.comp.iloc[i]
        T, S = self.cfg.segment_samples, self.S
        waves = []
        for s in range(1, S + 1):
            path = str(self.base / row[f"path_{s}"])  # an absolute path_s stays as it is
            start = max(0, (_frames(path, self.cfg.sample_rate) - T) // 2)
            waves.append(_read_segment(path, start, T, self.cfg.sample_rate))
        sources = np.stack(waves) / S
        classes = [str(row[f"cls_{s}"]) for s in range(1, S + 1)]
        return {"sources": torch.from_numpy(sources.astype(np.float32)), "classes": classes,
                "source_prompts": [single_prompt(c) for c in classes], "mixture_prompt": mixture_prompt(classes),
                "mixture_id": str(row["mixture_id"])}


# ------------------------------------------------------------------------------------------------------------------
# AudioCaps captions -> single-source phrases (Appendix E, Table 5)
# ------------------------------------------------------------------------------------------------------------------

# Clause separators, longest first. "X is followed by Y" drops the copula with the separator.
_SEPARATORS = [r",?\s+(?:is|are)\s+followed\s+by\s+", r",?\s+followed\s+by\s+", r",?\s+and\s+then\s+",
               r",?\s+then\s+", r"\s+while\s+", r"\s+as\s+", r"\s+over\s+", r"\s+before\s+", r"\s+after\s+",
               r"\s+along\s+with\s+", r"\s+accompanied\s+by\s+", r"\s+amid\s+", r"\s+during\s+", r";\s*", r",\s*"]
_VERB_RE = re.compile(r"^(?:\w+ing|\w+[^s]s|\w+ed|is|are|occurs?)$")
_NOT_VERBS = {"bus", "gas", "glass", "grass", "bass", "chorus", "wings", "ceiling", "building", "evening",
              "something", "nothing", "thing", "things", "strings", "ring", "spring"}


def _looks_like_clause(words: list[str]) -> bool:
    """Subject + verb: two or more words, and a non-initial word that looks like a finite verb or gerund."""
    return len(words) >= 2 and any(_VERB_RE.match(w) and w not in _NOT_VERBS for w in words[1:])


def _split_and(phrase: str) -> list[str]:
    """Split on " and " only between two clauses ("a horn honking and a siren wailing"), never inside a noun
    phrase ("an adult female and adult male speaking") or after a bare gerund ("spraying and a female screaming")."""
    parts = re.split(r"\s+and\s+", phrase)
    out = [parts[0]]
    for part in parts[1:]:
        left_words = out[-1].lower().split()
        right_words = part.lower().split()
        if _looks_like_clause(left_words) and _looks_like_clause(right_words):
            out.append(part)
        else:
            out[-1] = out[-1] + " and " + part
    return out


def split_caption(caption: str) -> list[str]:
    """Rule-based stand-in for the paper's constituent-tree phrase extraction (Appendix E, Table 5).

    1. split into clauses at temporal / concurrency connectives ("followed by", "then", "while", "as", "over",
       ...) and commas; 2. split a clause at " and " only when both sides are subject+verb clauses;
    3. a caption that stays one clause "<noun phrase> <verb>" is reduced to its noun phrase (Table 5: "An airplane
       engine runs" -> "An airplane engine"); 4. each phrase is stripped and capitalised, without final period."""
    text = re.sub(r"\s+", " ", caption.strip().rstrip("."))
    if not text:
        return []
    pieces = [text]
    for sep in _SEPARATORS:
        pieces = [p for piece in pieces for p in re.split(sep, piece, flags=re.IGNORECASE)]
    phrases = [q.strip(" ,;.") for p in pieces for q in _split_and(p.strip(" ,;."))]
    phrases = [re.sub(r"^(?:and|then)\s+", "", p, flags=re.IGNORECASE) for p in phrases if p]
    phrases = [p for p in phrases if p]
    if len(phrases) == 1:
        words = phrases[0].split()
        if len(words) >= 3 and words[-1].lower().endswith("s") and _VERB_RE.match(words[-1].lower()) \
                and words[-1].lower() not in _NOT_VERBS:
            phrases = [" ".join(words[:-1])]
    return [p[0].upper() + p[1:] for p in phrases]


# ------------------------------------------------------------------------------------------------------------------
# Real-dataset indexes (no downloads: the user's own folders)
# ------------------------------------------------------------------------------------------------------------------

INDEX_COLUMNS = ["path", "cls", "caption", "phrases", "source_id", "split", "dataset", "sample_rate", "frames",
                 "channels"]


def _check_file(path: Path, min_seconds: float) -> tuple[dict | None, str]:
    """(info, "") for a usable file, (None, reason) otherwise. Reads the samples once so that a file whose
    header parses but whose data is truncated or non-finite is caught here, not in the middle of training."""
    try:
        sr, frames, channels = audio_info(path)
        if frames < min_seconds * sr:
            return None, f"too short ({frames / sr:.2f} s < {min_seconds} s)"
        load_audio(path, sr)
    except AudioError as exc:
        return None, str(exc).split(": ", 1)[-1]
    return {"sample_rate": sr, "frames": frames, "channels": channels}, ""


def _seeded_split(source_id: str, seed: int, test_fraction: float, val_fraction: float) -> str:
    u = group_unit(source_id, f"index{seed}")
    return "test" if u < test_fraction else "val" if u < test_fraction + val_fraction else "train"


def _finish_index(rows: list[dict], skipped: list[dict], out_csv: str | Path, verbose: bool) -> tuple[pd.DataFrame,
                                                                                                     pd.DataFrame]:
    out_csv = Path(out_csv)
    index = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    skip = pd.DataFrame(skipped, columns=["path", "reason"])
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    _write_csv(index, out_csv)
    _write_csv(skip, out_csv.with_name(out_csv.stem + ".skipped.csv"))
    if verbose:
        for r in skipped:
            print(f"skipped {r['path']}: {r['reason']}", file=sys.stderr)
        print(f"{out_csv}: {len(index)} files indexed, {len(skip)} skipped "
              f"(listed in {out_csv.with_name(out_csv.stem + '.skipped.csv').name})")
    return index, skip


def index_music21(folder: str | Path, out_csv: str | Path, *, json_path: str | Path | None = None,
                  min_seconds: float = 1.0, test_fraction: float = 0.2, val_fraction: float = 0.1, seed: int = 0,
                  verbose: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Index MUSIC-21 audio: ``folder/<class>/<id>.<wav|flac|...>`` (or ``folder/audio/<class>/...``), optionally
    restricted to the ids of the MUSIC json (``{"videos": {"<class>": ["<id>", ...]}}``). Splits are seeded by
    video id (80/20 in the paper; here test_fraction / val_fraction). Class folder names with underscores become
    spaces ("acoustic_guitar" -> "acoustic guitar"). Returns (index, skipped); both are written."""
    folder = Path(folder)
    if (folder / "audio").is_dir():
        folder = folder / "audio"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: MUSIC folder not found")
    wanted: list[tuple[str, Path]] = []
    if json_path:
        spec = json.loads(Path(json_path).read_text())
        videos = spec.get("videos", spec)
        for cls, ids in videos.items():
            for vid in ids:
                found = sorted((folder / cls).glob(f"{vid}.*"))
                wanted.append((cls, found[0] if found else folder / cls / f"{vid}.wav"))
    else:
        for cls_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            for f in sorted(cls_dir.iterdir()):
                if f.suffix.lower() in (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff"):
                    wanted.append((cls_dir.name, f))
    rows, skipped = [], []
    for cls, f in wanted:
        info, reason = _check_file(f, min_seconds)
        if info is None:
            skipped.append({"path": str(f), "reason": reason})
            continue
        sid = f"{cls}/{f.stem}"
        rows.append({"path": str(f.resolve()), "cls": cls.replace("_", " "), "caption": "", "phrases": "",
                     "source_id": sid, "split": _seeded_split(sid, seed, test_fraction, val_fraction),
                     "dataset": "music21", **info})
    return _finish_index(rows, skipped, out_csv, verbose)


def _find_clip(folder: Path, names: list[str]) -> Path:
    for name in names:
        for ext in (".wav", ".flac", ".ogg", ".mp3"):
            p = folder / f"{name}{ext}"
            if p.is_file():
                return p
    return folder / f"{names[0]}.wav"


def index_vggsound(csv_path: str | Path, folder: str | Path, out_csv: str | Path, *, min_seconds: float = 1.0,
                   val_fraction: float = 0.1, seed: int = 0, verbose: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Index VGGSound: its CSV (``ytid,start_seconds,label,train|test``, no header) + local clips named
    ``<ytid>_<start:06d>.wav`` (the authors' naming) or ``<ytid>_<start>.wav``. The official train/test split is
    kept; a seeded val_fraction of train becomes val."""
    folder = Path(folder)
    table = pd.read_csv(csv_path, header=None, names=["ytid", "start", "label", "split"], keep_default_na=False,
                        dtype={"ytid": str})
    rows, skipped = [], []
    for r in table.itertuples(index=False):
        start = int(float(r.start))
        f = _find_clip(folder, [f"{r.ytid}_{start:06d}", f"{r.ytid}_{start}", f"{r.ytid}"])
        info, reason = _check_file(f, min_seconds)
        if info is None:
            skipped.append({"path": str(f), "reason": reason})
            continue
        sid = f"{r.ytid}_{start}"
        split = "test" if str(r.split).strip() == "test" else (
            "val" if group_unit(sid, f"vggval{seed}") < val_fraction else "train")
        rows.append({"path": str(f.resolve()), "cls": str(r.label).replace(",", " ").strip(), "caption": "",
                     "phrases": "", "source_id": sid, "split": split, "dataset": "vggsound", **info})
    return _finish_index(rows, skipped, out_csv, verbose)


def index_audiocaps(csv_path: str | Path, folder: str | Path, out_csv: str | Path, *, split: str = "train",
                    min_seconds: float = 1.0, verbose: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Index AudioCaps: one official CSV (``audiocap_id,youtube_id,start_time,caption``) + local clips named
    ``<youtube_id>_<start>.wav``, ``Y<youtube_id>.wav`` or ``<audiocap_id>.wav``; `split` is the CSV's split.
    Captions are split into single-source phrases by `split_caption` ('|'-joined in column "phrases").
    Natural-mixture training on AudioCaps is not wired into MixtureDataset (rows have no class)."""
    folder = Path(folder)
    table = pd.read_csv(csv_path, keep_default_na=False, dtype=str)
    need = {"audiocap_id", "youtube_id", "start_time", "caption"}
    if need - set(table.columns):
        raise ValueError(f"{csv_path}: AudioCaps CSV lacks columns {sorted(need - set(table.columns))}")
    rows, skipped = [], []
    for r in table.itertuples(index=False):
        start = int(float(r.start_time))
        f = _find_clip(folder, [f"{r.youtube_id}_{start}", f"{r.youtube_id}_{start:06d}", f"Y{r.youtube_id}",
                                f"{r.audiocap_id}"])
        info, reason = _check_file(f, min_seconds)
        if info is None:
            skipped.append({"path": str(f), "reason": reason})
            continue
        rows.append({"path": str(f.resolve()), "cls": "", "caption": r.caption,
                     "phrases": "|".join(split_caption(r.caption)), "source_id": str(r.audiocap_id),
                     "split": split, "dataset": "audiocaps", **info})
    return _finish_index(rows, skipped, out_csv, verbose)


# ------------------------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------------------------

def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def record_build(profile: str, what: str, seconds: float, clips: int, rendered: int, folder: Path) -> None:
    """Append one measured build to results/data_build.csv."""
    path = results_root() / "data_build.csv"
    row = pd.DataFrame([{"profile": profile, "what": what, "clips": clips, "rendered_now": rendered,
                         "seconds": round(seconds, 1), "megabytes": round(_dir_size(folder) / 2**20, 1),
                         "when": time.strftime("%Y-%m-%d %H:%M:%S")}])
    old = pd.read_csv(path) if path.is_file() else pd.DataFrame()
    _write_csv(pd.concat([old, row], ignore_index=True), path)


def _timed_build(what: str, profile: str, root: str | None, record: bool, workers: int = 1,
                 soundfont: str = "timgm6mb") -> None:
    """Build one corpus (separation | embedding, the latter in `soundfont`) and record its time."""
    cfg = get_config(profile, {"data.root": root} if root else None).data
    folder = synthmusic21_dir(cfg) if what == "separation" else embedding_dir(cfg, soundfont)
    before = len(pd.read_csv(folder / "manifest.csv")) if (folder / "manifest.csv").is_file() else 0
    t0 = time.time()
    df = (build_synthmusic21(cfg, profile, workers=workers) if what == "separation"
          else build_embedding_corpus(profile, root, workers=workers, soundfont=soundfont))
    seconds = time.time() - t0
    after = len(pd.read_csv(folder / "manifest.csv"))
    size = _dir_size(folder) / 2**20
    print(f"{what} ({profile}): {len(df)} clips, {after - before} rendered in {seconds:.1f} s, {size:.1f} MB "
          f"on disk in {folder}")
    if record and after > before:
        label = what if what == "separation" or soundfont == "timgm6mb" else f"{what}-{soundfont}"
        record_build(profile, label, seconds, len(df), after - before, folder)


def cli(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bimodal data", description="Build SynthMUSIC-21 and the embedding corpus "
                                 "(incremental, deterministic), rewrite the shipped compositions, index real datasets.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="render SynthMUSIC-21 and/or the embedding corpus (incremental)")
    b.add_argument("--profile", default="quick", choices=["smoke", "quick", "paper"])
    b.add_argument("--what", default="all", choices=["separation", "embedding", "all"])
    b.add_argument("--root", default=None, help="data root (default: $BIMODAL_DATA or <repo>/data)")
    b.add_argument("--no-record", action="store_true", help="do not append the build time to results/data_build.csv")
    b.add_argument("--workers", type=int, default=1, help="render in this many processes (same bytes)")
    c = sub.add_parser("compositions", help="rewrite the shipped val/test composition CSVs of a profile")
    c.add_argument("--profile", default="quick", choices=["smoke", "quick", "paper"])
    m = sub.add_parser("melodies", help="re-extract the shipped melody table from the music21 corpus (minutes)")
    m.add_argument("--out", default=None)
    ix = sub.add_parser("index", help="index a real dataset from local files into the common CSV format")
    ix.add_argument("dataset", choices=["music21", "vggsound", "audiocaps"])
    ix.add_argument("--folder", required=True, help="folder with the audio files")
    ix.add_argument("--csv", default=None, help="the dataset's CSV (vggsound, audiocaps) or MUSIC json (music21)")
    ix.add_argument("--out", required=True, help="index CSV to write")
    ix.add_argument("--split", default="train", help="audiocaps: which split the CSV is")
    ix.add_argument("--min-seconds", type=float, default=1.0)
    args = ap.parse_args(argv)
    if args.cmd == "build":
        torch.set_num_threads(1)
        if args.what in ("separation", "all"):
            _timed_build("separation", args.profile, args.root, not args.no_record, args.workers)
        if args.what in ("embedding", "all"):
            # in every SoundFont the profile's surrogate trains on (config embedding.soundfonts)
            for sf in get_config(args.profile).embedding.soundfont_list:
                _timed_build("embedding", args.profile, args.root, not args.no_record, args.workers, sf)
        return 0
    if args.cmd == "compositions":
        for p in write_compositions(get_config(args.profile).data):
            print(f"wrote {p}")
        return 0
    if args.cmd == "melodies":
        from bimodal.synth import MELODIES_CSV, extract_melodies

        extract_melodies(args.out or MELODIES_CSV)
        return 0
    if args.dataset == "music21":
        index_music21(args.folder, args.out, json_path=args.csv, min_seconds=args.min_seconds)
    elif args.dataset == "vggsound":
        if not args.csv:
            ap.error("vggsound needs --csv (vggsound.csv)")
        index_vggsound(args.csv, args.folder, args.out, min_seconds=args.min_seconds)
    else:
        if not args.csv:
            ap.error("audiocaps needs --csv (train.csv / val.csv / test.csv)")
        index_audiocaps(args.csv, args.folder, args.out, split=args.split, min_seconds=args.min_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
