"""Real-dataset indexes (no downloads: the user's own folders) in the common CSV format that `data.dataset` reads:
MUSIC-21, VGGSound and AudioCaps. Unreadable, missing or too-short files are reported by name and skipped."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from bimodal.audio import AudioError, audio_info, load_audio
from bimodal.datasets.captions import split_caption
from bimodal.datasets.layout import write_csv
from bimodal.datasets.melodies import group_unit

INDEX_COLUMNS = [
    "path",
    "cls",
    "caption",
    "phrases",
    "source_id",
    "split",
    "dataset",
    "sample_rate",
    "frames",
    "channels",
]


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


def _finish_index(
    rows: list[dict], skipped: list[dict], out_csv: str | Path, verbose: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    out_csv = Path(out_csv)
    index = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    skip = pd.DataFrame(skipped, columns=["path", "reason"])
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    write_csv(index, out_csv)
    write_csv(skip, out_csv.with_name(out_csv.stem + ".skipped.csv"))
    if verbose:
        for r in skipped:
            print(f"skipped {r['path']}: {r['reason']}", file=sys.stderr)
        print(
            f"{out_csv}: {len(index)} files indexed, {len(skip)} skipped "
            f"(listed in {out_csv.with_name(out_csv.stem + '.skipped.csv').name})"
        )
    return index, skip


def index_music21(
    folder: str | Path,
    out_csv: str | Path,
    *,
    json_path: str | Path | None = None,
    min_seconds: float = 1.0,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    seed: int = 0,
    verbose: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
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
        rows.append(
            {
                "path": str(f.resolve()),
                "cls": cls.replace("_", " "),
                "caption": "",
                "phrases": "",
                "source_id": sid,
                "split": _seeded_split(sid, seed, test_fraction, val_fraction),
                "dataset": "music21",
                **info,
            }
        )
    return _finish_index(rows, skipped, out_csv, verbose)


def _find_clip(folder: Path, names: list[str]) -> Path:
    for name in names:
        for ext in (".wav", ".flac", ".ogg", ".mp3"):
            p = folder / f"{name}{ext}"
            if p.is_file():
                return p
    return folder / f"{names[0]}.wav"


def index_vggsound(
    csv_path: str | Path,
    folder: str | Path,
    out_csv: str | Path,
    *,
    min_seconds: float = 1.0,
    val_fraction: float = 0.1,
    seed: int = 0,
    verbose: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Index VGGSound: its CSV (``ytid,start_seconds,label,train|test``, no header) + local clips named
    ``<ytid>_<start:06d>.wav`` (the authors' naming) or ``<ytid>_<start>.wav``. The official train/test split is
    kept; a seeded val_fraction of train becomes val."""
    folder = Path(folder)
    table = pd.read_csv(
        csv_path, header=None, names=["ytid", "start", "label", "split"], keep_default_na=False, dtype={"ytid": str}
    )
    rows, skipped = [], []
    for r in table.itertuples(index=False):
        start = int(float(r.start))
        f = _find_clip(folder, [f"{r.ytid}_{start:06d}", f"{r.ytid}_{start}", f"{r.ytid}"])
        info, reason = _check_file(f, min_seconds)
        if info is None:
            skipped.append({"path": str(f), "reason": reason})
            continue
        sid = f"{r.ytid}_{start}"
        split = (
            "test"
            if str(r.split).strip() == "test"
            else ("val" if group_unit(sid, f"vggval{seed}") < val_fraction else "train")
        )
        rows.append(
            {
                "path": str(f.resolve()),
                "cls": str(r.label).replace(",", " ").strip(),
                "caption": "",
                "phrases": "",
                "source_id": sid,
                "split": split,
                "dataset": "vggsound",
                **info,
            }
        )
    return _finish_index(rows, skipped, out_csv, verbose)


def index_audiocaps(
    csv_path: str | Path,
    folder: str | Path,
    out_csv: str | Path,
    *,
    split: str = "train",
    min_seconds: float = 1.0,
    verbose: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
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
        f = _find_clip(
            folder, [f"{r.youtube_id}_{start}", f"{r.youtube_id}_{start:06d}", f"Y{r.youtube_id}", f"{r.audiocap_id}"]
        )
        info, reason = _check_file(f, min_seconds)
        if info is None:
            skipped.append({"path": str(f), "reason": reason})
            continue
        rows.append(
            {
                "path": str(f.resolve()),
                "cls": "",
                "caption": r.caption,
                "phrases": "|".join(split_caption(r.caption)),
                "source_id": str(r.audiocap_id),
                "split": split,
                "dataset": "audiocaps",
                **info,
            }
        )
    return _finish_index(rows, skipped, out_csv, verbose)
