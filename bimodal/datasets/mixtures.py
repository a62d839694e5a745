"""The mixtures a separator trains and is evaluated on: training mixtures-of-mixtures (Sections 3.2–3.4,
Algorithm 1, prompts of Table 6) and the fixed, seeded evaluation compositions val2 / test2 / test3."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch

from bimodal.audio import audio_info, load_audio
from bimodal.config import Config, ConfigError, DataConfig
from bimodal.datasets.labels import CLASSES, mixture_prompt, single_prompt
from bimodal.datasets.layout import clip_path, clip_split, synthmusic21_dir, write_csv
from bimodal.datasets.manifest import DatasetNotBuilt, build_command, load_manifest

COMPOSITIONS = Path(__file__).resolve().parent.parent / "compositions"


def read_segment(path: str, start: int, length: int, sample_rate: int) -> np.ndarray:
    """float32 [length] from `start` (zero-padded past the end). Reads only the window when the file is already
    mono at the right rate (SynthMUSIC-21); otherwise loads through bimodal.audio.load_audio."""
    info = sf.info(path)
    if info.samplerate == sample_rate and info.channels == 1:
        with sf.SoundFile(path) as f:
            f.seek(min(start, max(0, info.frames - 1)))
            wave = f.read(length, dtype="float32")
    else:
        wave = load_audio(path, sample_rate)[start : start + length]
    if len(wave) < length:
        wave = np.pad(wave, (0, length - len(wave)))
    return wave


def frames_at_rate(path: str, sample_rate: int) -> int:
    sr, frames, _ = audio_info(path)
    return int(frames * sample_rate / sr)


class MixtureDataset(torch.utils.data.Dataset):
    """Training mixtures-of-mixtures (Sections 3.2–3.4, Algorithm 1).

    Item i of epoch e is a pure function of (seed, epoch, i), so a resumed run sees the same data. Each item holds
    N mixtures of K single sources, all N·K classes distinct; every source is a random crop with a random gain in
    [0.5, 1.5] (clipped to ±1), divided once by N·K so the MoM stays within ±1. K=1 gives N single sources
    (the supervised case)."""

    def __init__(
        self,
        cfg: DataConfig,
        manifest: pd.DataFrame,
        split: str = "train",
        *,
        k_sources: int | None = None,
        n_mix: int | None = None,
        subset: str = "all",
        seed: int = 0,
        items: int | None = None,
    ):
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
                raise ValueError(
                    f"MixtureDataset: no {split} clips in subset {subset!r}; set "
                    f"data.single_source_fraction > 0 (load_manifest assigns the subsets)"
                )
            rows = rows[rows["subset"] == subset]
        self.by_class: dict[str, list[str]] = {c: sorted(g["path"].tolist()) for c, g in rows.groupby("cls")}
        self.classes = sorted(self.by_class)
        if len(self.classes) < self.n * self.k:
            raise ValueError(
                f"MixtureDataset: {self.n} mixtures x {self.k} sources need {self.n * self.k} distinct "
                f"classes; the {split}/{subset} clips have {len(self.classes)}"
            )
        self.items = int(items or cfg.train_items_per_epoch)
        self._frame_counts: dict[str, int] = {}

    def __len__(self) -> int:
        return self.items

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _n_frames(self, path: str) -> int:
        if path not in self._frame_counts:
            self._frame_counts[path] = frames_at_rate(path, self.cfg.sample_rate)
        return self._frame_counts[path]

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
            wave = np.clip(read_segment(path, start, T, self.cfg.sample_rate) * gain, -1.0, 1.0)
            sources[j // K, j % K] = wave / (N * K)
            classes.append(cls)
            paths.append(path)
        classes_nk = [classes[n * K : (n + 1) * K] for n in range(N)]
        return {
            "sources": torch.from_numpy(sources),
            "classes": classes_nk,
            "mixture_prompts": [mixture_prompt(c) for c in classes_nk],
            "source_prompts": [[single_prompt(x) for x in c] for c in classes_nk],
            "paths": [paths[n * K : (n + 1) * K] for n in range(N)],
        }


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
        clips = [(c, clip_path(c, i)) for c in CLASSES for i in range(cfg.clips_per_class) if clip_split(i) == split]
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
        write_csv(make_composition(cfg, name), path)
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
                warnings.warn(
                    f"no shipped composition {shipped.name}; generating it for this configuration", stacklevel=2
                )
                comp = make_composition(cfg, name)
        else:
            self.base = Path(cfg.dataset).parent
            comp = make_composition(cfg, name, manifest if manifest is not None else load_manifest(cfg))
        limit = cfg.val_mixtures if name == "val2" else cfg.test_mixtures
        if limit and limit > 0:
            comp = comp.iloc[:limit]
        self.comp = comp.reset_index(drop=True)
        if cfg.dataset == "synthmusic21":
            needed = sorted({p for s in range(1, self.S + 1) for p in self.comp[f"path_{s}"]})
            missing = [p for p in needed if not (self.base / p).is_file()]
            if missing:
                raise DatasetNotBuilt(
                    f"evaluation set {name!r} needs {len(missing)} SynthMUSIC-21 clips that are "
                    f"not in {self.base} (e.g. {missing[0]}); run `{build_command(cfg)}`"
                )

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
            start = max(0, (frames_at_rate(path, self.cfg.sample_rate) - T) // 2)
            waves.append(read_segment(path, start, T, self.cfg.sample_rate))
        sources = np.stack(waves) / S
        classes = [str(row[f"cls_{s}"]) for s in range(1, S + 1)]
        return {
            "sources": torch.from_numpy(sources.astype(np.float32)),
            "classes": classes,
            "source_prompts": [single_prompt(c) for c in classes],
            "mixture_prompt": mixture_prompt(classes),
            "mixture_id": str(row["mixture_id"]),
        }


def training_datasets(cfg: Config, manifest: pd.DataFrame, rank: int, world: int):
    """The training datasets of a run's method (the engine's, bimodal.train): (mixtures, single_sources or None)."""
    d, t = cfg.data, cfg.train
    items = d.train_items_per_epoch
    if t.method == "supervised":
        main = MixtureDataset(
            d, manifest, "train", k_sources=1, n_mix=d.n_mix, subset=d.train_subset, seed=t.seed, items=items
        )
        return main, None
    if t.method == "semi_supervised":
        main = MixtureDataset(d, manifest, "train", subset="mixture", seed=t.seed, items=items)
        single = MixtureDataset(
            d, manifest, "train", k_sources=1, n_mix=d.n_mix, subset="single", seed=t.seed + 1, items=items
        )
        return main, single
    return MixtureDataset(d, manifest, "train", subset=d.train_subset, seed=t.seed, items=items), None


def training_loader(dataset, cfg: Config, rank: int, world: int) -> torch.utils.data.DataLoader:
    """Items are pure functions of (seed, epoch, index): a sequential loader over this rank's share of a global
    batch keeps runs resumable and makes 2 ranks × B/2 see exactly the items of 1 rank × B."""
    from torch.utils.data import DataLoader, Subset

    B = cfg.train.batch_size
    if B % world:
        raise ConfigError(
            f"config field 'train.batch_size' ({B}) must be divisible by the number of processes ({world})"
        )
    local = B // world
    n = (len(dataset) // B) * B  # drop the last incomplete global batch
    idx = [i for i in range(n) if (i % B) // local == rank]
    return DataLoader(Subset(dataset, idx), batch_size=local, shuffle=False, num_workers=0, collate_fn=collate_mixtures)
