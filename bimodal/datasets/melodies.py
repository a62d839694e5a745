"""Melodies of the music21 corpus (shipped as bimodal/compositions/melodies.csv), their seed-free split into the
SynthMUSIC-21 and embedding-corpus pools, and the re-extraction that regenerates the table."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

MELODIES_CSV = Path(__file__).resolve().parent.parent / "compositions" / "melodies.csv"
MAX_NOTES = 96


@dataclass(frozen=True)
class Melody:
    melody_id: str  # e.g. "bach/bwv66.6:S", "essenFolksong/han1.abc#12"
    group: str  # the source piece: the soprano and bass line of one chorale share a group (splits use groups)
    source: str  # bach | ryansMammoth | essenFolksong | oneills1850
    tonic: int  # pitch class of the key's tonic
    minor: bool
    bar: float  # bar length in quarter notes
    pitches: tuple[int, ...]  # MIDI pitches, rests removed (chorale rests would leave silent gaps)
    durs: tuple[float, ...]  # quarter-note durations


# Which corpus files feed the pool: chorales (soprano + bass lines), Scottish/Irish fiddle tunes, German and Chinese
# folk songs (the Chinese ones suit erhu / pipa / guzheng). Fixed lists keep extraction deterministic.
_ESSEN_FILES = (
    "han1.abc",
    "han2.abc",
    "altdeu10.abc",
    "kinder0.abc",
    "ballad10.abc",
    "ballad20.abc",
    "boehme10.abc",
    "erk5.abc",
    "irl.abc",
    "folkHaydn.abc",
)
_ONEILLS_FILES = ("0001-0050.abc", "0051-0100.abc", "0101-0200.abc", "0201-0300.abc")


def _melody_from_part(part) -> tuple[list[int], list[float]] | None:
    pitches, durs = [], []
    for el in part.stripTies().flatten().notes:
        ql = float(el.duration.quarterLength)
        if ql <= 0:  # grace notes
            continue
        p = max(x.midi for x in el.pitches) if el.isChord else el.pitch.midi
        pitches.append(int(p))
        durs.append(round(ql, 4))
        if len(pitches) >= MAX_NOTES:
            break
    if len(pitches) < 12 or max(pitches) - min(pitches) > 26 or sum(durs) < 8:
        return None
    return pitches, durs


def _key_and_bar(score) -> tuple[int, bool, float]:
    try:
        key = score.analyze("key")
        tonic, minor = key.tonic.pitchClass, key.mode == "minor"
    except Exception:  # music21 raises assorted errors on degenerate tunes
        tonic, minor = 0, False
    bar = 4.0
    ts = score.recurse().getElementsByClass("TimeSignature")
    if ts:
        bar = float(ts[0].barDuration.quarterLength)
        if not 1.5 <= bar <= 6:
            bar = 4.0
    return int(tonic), bool(minor), bar


def extract_melodies(out_csv: str | Path = MELODIES_CSV, *, verbose: bool = True) -> int:
    """Parse the music21 corpus (ships in the wheel, offline) into the melody table; returns the row count.

    Regenerates the shipped ``compositions/melodies.csv`` (takes a few minutes: music21 parsing is slow, which is
    why the table ships instead of being parsed at every build).
    """
    from music21 import corpus

    rows: list[dict] = []
    core = sorted(str(p) for p in corpus.getCorePaths())

    def add(mel_id, group, source, score, part):
        got = _melody_from_part(part)
        if got is None:
            return
        tonic, minor, bar = _key_and_bar(score)
        rows.append(
            {
                "melody_id": mel_id,
                "group": group,
                "source": source,
                "tonic": tonic,
                "minor": int(minor),
                "bar": bar,
                "notes": " ".join(f"{p}/{d:g}" for p, d in zip(*got)),
            }
        )

    for path in core:
        rel = path.split("/corpus/", 1)[1]
        source = rel.split("/", 1)[0]
        name = rel.split("/", 1)[1] if "/" in rel else rel
        try:
            if source == "bach" and rel.endswith((".mxl", ".xml", ".musicxml", ".krn")):
                score = corpus.parse(path)
                if len(score.parts) != 4:
                    continue
                group = "bach/" + Path(name).stem
                add(group + ":S", group, source, score, score.parts[0])
                add(group + ":B", group, source, score, score.parts[3])
            elif source == "ryansMammoth":
                score = corpus.parse(path)
                group = "ryansMammoth/" + Path(name).stem
                add(group, group, source, score, score.parts[0])
            elif source in ("essenFolksong", "oneills1850") and Path(name).name in _ESSEN_FILES + _ONEILLS_FILES:
                opus = corpus.parse(path)
                for j, score in enumerate(opus.scores):
                    group = f"{source}/{Path(name).name}#{j}"
                    add(group, group, source, score, score.parts[0] if score.parts else score)
            else:
                continue
        except Exception as exc:  # a corpus file music21 cannot parse is skipped, not fatal
            if verbose:
                print(f"skipping {rel}: {exc}")
            continue
        if verbose and len(rows) % 200 < 2:
            print(f"{len(rows)} melodies ...", flush=True)
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with open(out_csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["melody_id", "group", "source", "tonic", "minor", "bar", "notes"])
        w.writeheader()
        w.writerows(rows)
    if verbose:
        print(f"wrote {len(rows)} melodies to {out_csv}")
    return len(rows)


@lru_cache(maxsize=2)
def load_melodies(path: str | Path = MELODIES_CSV) -> tuple[Melody, ...]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: melody table missing; regenerate it with `bimodal data melodies`")
    out = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            notes = [tok.split("/") for tok in row["notes"].split()]
            out.append(
                Melody(
                    row["melody_id"],
                    row["group"],
                    row["source"],
                    int(row["tonic"]),
                    row["minor"] == "1",
                    float(row["bar"]),
                    tuple(int(p) for p, _ in notes),
                    tuple(float(d) for _, d in notes),
                )
            )
    return tuple(out)


def group_unit(group: str, salt: str) -> float:
    """A uniform number in [0, 1) fixed by (salt, group): splits and pools that never depend on build order."""
    h = hashlib.sha256(f"{salt}|{group}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


EMBEDDING_POOL_FRACTION = 0.25  # share of melody groups reserved for the embedding corpus (never in SynthMUSIC-21)


@lru_cache(maxsize=4)
def melody_pool(corpus: str) -> tuple[Melody, ...]:
    """The melodies of one corpus: 'separation' (SynthMUSIC-21) or 'embedding'; disjoint by group, seed-free."""
    emb = [m for m in load_melodies() if group_unit(m.group, "pool") < EMBEDDING_POOL_FRACTION]
    sep = [m for m in load_melodies() if group_unit(m.group, "pool") >= EMBEDDING_POOL_FRACTION]
    return tuple(emb if corpus == "embedding" else sep)
