"""Rendering SynthMUSIC-21 and the disjoint joint-embedding corpus (`bimodal data build`).

A clip is a pure function of (seed, corpus, label, idx), so a build is incremental (a bigger profile renders only
the missing clips) and idempotent, and the same seed gives identical bytes. A clip's melody is drawn from its
split's melodies, so splits are disjoint by melody source (a chorale's soprano and bass lines count as one source).
Nothing else renders data: loading a dataset that is not built is an error naming this step
(bimodal.datasets.manifest).
"""

from __future__ import annotations

import copy
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bimodal.audio import save_audio
from bimodal.config import Config, DataConfig, get_config
from bimodal.datasets.instruments import captions_for, embedding_labels
from bimodal.datasets.labels import CLASSES
from bimodal.datasets.layout import (
    EMBEDDING_COLUMNS,
    EMBEDDING_VAL_EVERY,
    SEPARATION_COLUMNS,
    absolute,
    clip_path,
    clip_split,
    embedding_dir,
    synthmusic21_dir,
    write_csv,
)
from bimodal.datasets.melodies import Melody, group_unit, melody_pool
from bimodal.datasets.render import VARIED_COLUMNS, render_clip
from bimodal.datasets.soundfonts import SOUNDFONT_SILENT_LABELS, corpus_soundfont
from bimodal.utils import file_sha256, outputs_root

MELODY_SPLITS = (("train", 0.7), ("val", 0.8), ("test", 1.0))  # cumulative shares of melody groups


def melody_split(group: str, seed: int) -> str:
    u = group_unit(group, f"split{seed}")
    return next(name for name, upper in MELODY_SPLITS if u < upper)


@lru_cache(maxsize=8)
def _melodies_by_split(corpus: str, seed: int) -> dict[str, tuple[Melody, ...]]:
    pool = melody_pool(corpus)
    if corpus == "embedding":
        return {
            "train": tuple(m for m in pool if group_unit(m.group, "embsplit") >= 0.1),
            "val": tuple(m for m in pool if group_unit(m.group, "embsplit") < 0.1),
        }
    out: dict[str, list[Melody]] = {"train": [], "val": [], "test": []}
    for m in pool:
        out[melody_split(m.group, seed)].append(m)
    return {k: tuple(v) for k, v in out.items()}


def _render_one(job: tuple) -> dict:
    """Render, save and describe one clip (module-level so worker processes can run it)."""
    corpus, cfg, label, idx, out_dir, sf2 = job
    torch.set_num_threads(1)
    rel = clip_path(label, idx)
    path = out_dir / rel
    if corpus == "separation":
        split = clip_split(idx)
    else:
        split = "val" if idx % EMBEDDING_VAL_EVERY == 1 else "train"
    # the label's position in the fixed label list, not in the requested subset, so a subset build gives the same
    # bytes
    label_id = (CLASSES if corpus == "separation" else embedding_labels()).index(label)
    seed_seq = [cfg.seed, 0 if corpus == "separation" else 1, label_id, idx]
    wave, info = render_clip(
        label,
        _melodies_by_split(corpus, cfg.seed)[split],
        seed_seq,
        n_samples=cfg.clip_samples,
        sample_rate=cfg.sample_rate,
        sf2=sf2,
        variety=cfg.variety if corpus == "separation" else "basic",
    )
    save_audio(path, wave, cfg.sample_rate)
    row = {
        "path": rel,
        "cls" if corpus == "separation" else "label": label,
        "idx": idx,
        "melody_id": info["melody_id"],
        "group": info["group"],
        "split": split,
        "tempo": info["tempo"],
        "sha256": file_sha256(path),
    }
    if "preset" in info:  # the varied rendering records what it drew
        row.update({k: info[k] for k in VARIED_COLUMNS})
    if corpus == "embedding":
        caption, variants = captions_for(label, info["tempo"], np.random.default_rng(seed_seq + [7]))
        row.update(caption=caption, captions="|".join(variants))
    return row


def _build(
    corpus: str,
    cfg: DataConfig,
    labels: tuple[str, ...],
    per_label: int,
    out_dir: Path,
    columns: list[str],
    sf2: str | None,
    verbose: bool,
    workers: int = 1,
) -> pd.DataFrame:
    """Render what is missing of labels × range(per_label) into out_dir; return the manifest rows asked for.
    Every clip is a pure function of its job, so `workers` > 1 processes give the same bytes."""
    manifest_path = out_dir / "manifest.csv"
    old = (
        pd.read_csv(manifest_path, keep_default_na=False) if manifest_path.is_file() else pd.DataFrame(columns=columns)
    )
    have = {row["path"]: row for row in old.to_dict("records")}
    wanted = [(label, idx, clip_path(label, idx)) for label in labels for idx in range(per_label)]
    jobs = [
        (corpus, cfg, label, idx, out_dir, sf2)
        for label, idx, rel in wanted
        if not (rel in have and (out_dir / rel).is_file())
    ]
    t0 = time.time()

    def done(row: dict, n: int) -> None:
        have[row["path"]] = row
        if n % 100 == 0:
            write_csv(pd.DataFrame(list(have.values()), columns=columns), manifest_path)
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
        write_csv(pd.DataFrame(list(have.values()), columns=columns), manifest_path)
    if verbose:
        print(f"{corpus}: {len(wanted)} clips in {out_dir} ({len(jobs)} rendered now, {time.time() - t0:.1f} s)")
    return pd.DataFrame([have[rel] for _, _, rel in wanted], columns=columns)


def build_synthmusic21(
    cfg: DataConfig,
    profile: str | None = None,
    *,
    verbose: bool = True,
    classes: tuple[str, ...] = CLASSES,
    workers: int = 1,
) -> pd.DataFrame:
    """Render (incrementally) cfg.clips_per_class clips of each class; returns the manifest with absolute paths.

    `profile` only labels the progress output (the clips depend on cfg alone); `workers` > 1 renders in that many
    processes (same bytes)."""
    out_dir = synthmusic21_dir(cfg)
    if verbose:
        print(
            f"SynthMUSIC-21{f' ({profile})' if profile else ''}: {len(classes)} classes x {cfg.clips_per_class} "
            f"clips -> {out_dir}"
        )
    columns = SEPARATION_COLUMNS + (list(VARIED_COLUMNS) if cfg.variety == "varied" else [])
    df = _build("separation", cfg, tuple(classes), cfg.clips_per_class, out_dir, columns, None, verbose, workers)
    return absolute(df, out_dir)


def build_embedding_corpus(
    profile: str,
    root: Path | str | None = None,
    *,
    verbose: bool = True,
    labels: tuple[str, ...] | None = None,
    workers: int = 1,
    soundfont: str = "timgm6mb",
    data: DataConfig | None = None,
) -> pd.DataFrame:
    """The joint-embedding pretraining corpus in one SoundFont (`soundfont`, a name of
    bimodal.datasets.soundfonts.CORPUS_SOUNDFONTS; never FluidR3): the 21 classes + extra GM / percussion / SFX labels, varied
    captions, melodies disjoint from SynthMUSIC-21's. Every SoundFont renders the same scores, so its clips differ
    from TimGM6mb's in timbre only. Columns: path (absolute), label, caption, captions ('|'-joined variants),
    melody_id, split (train|val), idx, group, tempo, sha256. `data` (default: the profile's data section) sets
    the rate, clip length, seed and clips per label."""
    cfg = copy.deepcopy(data) if data is not None else get_config(profile).data
    if root is not None:
        cfg.root = str(root)
    sf2 = corpus_soundfont(soundfont)
    out_dir = embedding_dir(cfg, soundfont)
    silent = SOUNDFONT_SILENT_LABELS.get(soundfont, ())
    labels = tuple(lab for lab in (labels or embedding_labels()) if lab not in silent)
    if verbose:
        print(
            f"embedding corpus ({profile}, {soundfont}): {len(labels)} labels x {cfg.embedding_clips_per_label} "
            f"clips -> {out_dir}"
        )
    df = _build(
        "embedding", cfg, labels, cfg.embedding_clips_per_label, out_dir, EMBEDDING_COLUMNS, str(sf2), verbose, workers
    )
    return absolute(df, out_dir)


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def record_build(profile: str, what: str, seconds: float, clips: int, rendered: int, folder: Path) -> None:
    """Append one measured build to outputs/data_build.csv (`bimodal report --adopt-timings` publishes it)."""
    path = outputs_root() / "data_build.csv"
    row = pd.DataFrame(
        [
            {
                "profile": profile,
                "what": what,
                "clips": clips,
                "rendered_now": rendered,
                "seconds": round(seconds, 1),
                "megabytes": round(_dir_size(folder) / 2**20, 1),
                "when": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
        ]
    )
    old = pd.read_csv(path) if path.is_file() else pd.DataFrame()
    write_csv(pd.concat([old, row], ignore_index=True), path)


def timed_build(what: str, cfg: Config, record: bool, workers: int = 1, soundfont: str = "timgm6mb") -> None:
    """Build one corpus of `cfg` (separation | embedding, the latter in `soundfont`), print and record its time."""
    profile, data = cfg.profile, cfg.data
    folder = synthmusic21_dir(data) if what == "separation" else embedding_dir(data, soundfont)
    before = len(pd.read_csv(folder / "manifest.csv")) if (folder / "manifest.csv").is_file() else 0
    t0 = time.time()
    df = (
        build_synthmusic21(data, profile, workers=workers)
        if what == "separation"
        else build_embedding_corpus(profile, data.root or None, workers=workers, soundfont=soundfont, data=data)
    )
    seconds = time.time() - t0
    after = len(pd.read_csv(folder / "manifest.csv"))
    size = _dir_size(folder) / 2**20
    print(
        f"{what} ({profile}): {len(df)} clips, {after - before} rendered in {seconds:.1f} s, {size:.1f} MB "
        f"on disk in {folder}"
    )
    if record and after > before:
        label = what if what == "separation" or soundfont == "timgm6mb" else f"{what}-{soundfont}"
        record_build(profile, label, seconds, len(df), after - before, folder)
