"""Synthetic instrument clips from a real SoundFont synthesizer: the core of SynthMUSIC-21 and of the
joint-embedding corpus.

Pipeline of one clip (a pure function of its seed sequence, so the same seed gives identical bytes):

    melody (music21 corpus, shipped as bimodal/compositions/melodies.csv)
      -> per-class playing style (chords, arpeggios, grooves, tremolo, glides + vibrato, ...) as timed MIDI events
      -> FluidSynth (persistent synth, reset between clips) at 22050 Hz, float output
      -> resample to the dataset rate (bimodal.audio.resample), synthetic room, loudness normalisation.

Why hand-written: no library turns a melody into idiomatic accompaniment patterns per instrument, and
pretty_midi.fluidsynth() reloads the SoundFont on every call and mixes to one channel.
"""
from __future__ import annotations

import csv
import ctypes
import hashlib
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from bimodal.audio import resample

# ------------------------------------------------------------------------------------------------------------------
# Classes and prompts
# ------------------------------------------------------------------------------------------------------------------

CLASSES: tuple[str, ...] = (
    "accordion", "acoustic guitar", "bagpipe", "banjo", "bassoon", "cello", "clarinet", "congas", "drum",
    "electric bass", "erhu", "flute", "guzheng", "piano", "pipa", "saxophone", "trumpet", "tuba", "ukulele",
    "violin", "xylophone",
)


def single_prompt(cls: str) -> str:
    """Table 6 single-source template: ``single_prompt("violin") == "The sound of violin"``."""
    return f"The sound of {cls}"


def mixture_prompt(classes: list[str] | tuple[str, ...]) -> str:
    """Table 6 multi-source template: "The sound mixture of A and B" / "..., A, B, and C"; one class -> single."""
    classes = list(classes)
    if not classes:
        raise ValueError("mixture_prompt needs at least one class")
    if len(classes) == 1:
        return single_prompt(classes[0])
    if len(classes) == 2:
        return f"The sound mixture of {classes[0]} and {classes[1]}"
    return "The sound mixture of " + ", ".join(classes[:-1]) + f", and {classes[-1]}"


def slug(label: str) -> str:
    """File-system name of a class/label: "acoustic guitar" -> "acoustic_guitar"."""
    return label.strip().lower().replace(" ", "_").replace("/", "_")


# ------------------------------------------------------------------------------------------------------------------
# SoundFonts
# ------------------------------------------------------------------------------------------------------------------

FLUIDR3 = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
RENDER_SR = 22050  # FluidSynth rate; an exact 2x of the dataset's 11025 Hz keeps the resampler cheap


def _debian_soundfont(default: Path, env: str, what: str, package: str) -> Path:
    """A SoundFont from a Debian package, overridable by $env; the error names the package and the variable."""
    path = Path(os.environ.get(env, default))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found; install the Debian package {package} or set ${env}")
    return path


def fluidr3_path() -> Path:
    return _debian_soundfont(FLUIDR3, "BIMODAL_FLUIDR3", "FluidR3_GM SoundFont", "fluid-soundfont-gm (`make setup`)")


def timgm6mb_path() -> Path:
    import pretty_midi

    path = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the TimGM6mb SoundFont that ships in the pretty_midi wheel is missing")
    return path


CSOUND_GM = Path("/usr/share/sounds/sf2/sf_GMbank.sf2")


def csound_gm_path() -> Path:
    return _debian_soundfont(CSOUND_GM, "BIMODAL_CSOUND_SF2", "the csound GM SoundFont (sf_GMbank.sf2)",
                             "csound-soundfont (`make setup`)")


OPL3_FM = Path("/usr/share/sounds/sf2/OPL-3_FM_128M.sf2")


def opl3_path() -> Path:
    return _debian_soundfont(OPL3_FM, "BIMODAL_OPL3_SF2", "the OPL3 FM SoundFont", "opl3-soundfont")


# SoundFonts the joint-embedding corpus may be rendered with. Never FluidR3 (or a SoundFont derived from it, such
# as MuseScore General): that is SynthMUSIC-21's, the separator's domain, on which the surrogate is evaluated.
CORPUS_SOUNDFONTS: dict[str, Callable[[], Path]] = {"timgm6mb": timgm6mb_path, "csound": csound_gm_path,
                                                    "opl3": opl3_path}  # OPL3: FM synthesis, far from samples


# Labels a corpus SoundFont has no sound for (their rendering stays silent): the corpus leaves them out.
SOUNDFONT_SILENT_LABELS: dict[str, tuple[str, ...]] = {"opl3": ("triangle", "castanets")}  # empty drum keys 81, 85


def corpus_soundfont(name: str) -> Path:
    """Path of a corpus SoundFont by name (see CORPUS_SOUNDFONTS)."""
    if name not in CORPUS_SOUNDFONTS:
        raise ValueError(f"unknown corpus SoundFont {name!r}; choose from {', '.join(CORPUS_SOUNDFONTS)}")
    return CORPUS_SOUNDFONTS[name]()


# ------------------------------------------------------------------------------------------------------------------
# Melodies (music21 corpus -> shipped CSV)
# ------------------------------------------------------------------------------------------------------------------

MELODIES_CSV = Path(__file__).parent / "compositions" / "melodies.csv"
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
_ESSEN_FILES = ("han1.abc", "han2.abc", "altdeu10.abc", "kinder0.abc", "ballad10.abc", "ballad20.abc",
                "boehme10.abc", "erk5.abc", "irl.abc", "folkHaydn.abc")
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
        rows.append({"melody_id": mel_id, "group": group, "source": source, "tonic": tonic, "minor": int(minor),
                     "bar": bar, "notes": " ".join(f"{p}/{d:g}" for p, d in zip(*got))})

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
        raise FileNotFoundError(f"{path}: melody table missing; regenerate it with bimodal.synth.extract_melodies()")
    out = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            notes = [tok.split("/") for tok in row["notes"].split()]
            out.append(Melody(row["melody_id"], row["group"], row["source"], int(row["tonic"]), row["minor"] == "1",
                              float(row["bar"]), tuple(int(p) for p, _ in notes), tuple(float(d) for _, d in notes)))
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


# ------------------------------------------------------------------------------------------------------------------
# Events and styles
# ------------------------------------------------------------------------------------------------------------------

PERC = 9  # the General MIDI percussion channel
BLOCK = 64  # FluidSynth's internal block size (samples)


@dataclass(order=True)
class Event:
    t: float  # seconds
    order: int  # note-offs before note-ons at the same time
    kind: str = field(compare=False)  # on | off | bend | cc
    chan: int = field(compare=False)
    a: int = field(compare=False)
    b: int = field(compare=False, default=0)


class Score:
    """Timed MIDI events of one clip. Notes are kept as (start, end) until `timeline()`, which clamps a note's end
    to the next onset of the same key on the same channel: otherwise a repeated pitch whose predecessor is still
    held would be cut by the predecessor's late note-off (FluidSynth releases the key, not one note)."""

    def __init__(self) -> None:
        self.events: list[Event] = []  # bends and controllers
        self.notes: list[tuple[float, float, int, int, int]] = []  # (start s, end s, key, velocity, channel)

    def note(self, t: float, dur: float, key: int, vel: int, chan: int = 0) -> None:
        key = int(key)
        if not 0 <= key <= 127 or dur <= 0:
            return
        self.notes.append((float(t), float(t + dur), key, int(min(127, max(1, vel))), int(chan)))

    def bend(self, t: float, semitones: float, chan: int = 0, bend_range: float = 12.0) -> None:
        val = int(round(semitones / bend_range * 8192))
        self.events.append(Event(t, 0, "bend", chan, max(-8192, min(8191, val))))

    def cc(self, t: float, ctrl: int, val: int, chan: int = 0) -> None:
        self.events.append(Event(t, 0, "cc", chan, ctrl, int(min(127, max(0, val)))))

    def timeline(self) -> list[Event]:
        """All events in time order (note-offs before note-ons at the same instant)."""
        out = list(self.events)
        by_key: dict[tuple[int, int], list[tuple[float, float, int]]] = {}
        for start, end, key, vel, chan in self.notes:
            by_key.setdefault((chan, key), []).append((start, end, vel))
        for (chan, key), notes in by_key.items():
            notes.sort()
            for j, (start, end, vel) in enumerate(notes):
                if j + 1 < len(notes):
                    end = min(end, notes[j + 1][0])
                if end <= start:  # a duplicate onset: the later note sounds
                    continue
                out.append(Event(start, 1, "on", chan, key, vel))
                out.append(Event(end, 0, "off", chan, key))
        return sorted(out)


@dataclass
class Ctx:
    """Everything a style needs: the melody placed in time and register, the harmony, the clip's random state."""
    rng: np.random.Generator
    spb: float  # seconds per quarter note
    T: float  # clip duration in seconds (events run a little past it)
    notes: list[tuple[float, float, int]]  # (start s, duration s, MIDI pitch) of the placed melody
    tonic: int
    minor: bool
    bar: float  # quarter notes per bar
    lo: int
    hi: int

    def chord_at(self, t: float) -> tuple[int, ...]:
        """Pitch classes of the diatonic triad that harmonises the melody note sounding at t."""
        pc = self.pitch_at(t) % 12
        rel = (pc - self.tonic) % 12
        triads = ([(0, 3, 7), (7, 11, 2), (5, 8, 0), (8, 0, 3), (3, 7, 10)] if self.minor
                  else [(0, 4, 7), (7, 11, 2), (5, 9, 0), (9, 0, 4), (2, 5, 9)])
        for tri in triads:
            if rel in tri:
                return tuple((self.tonic + x) % 12 for x in tri)
        return tuple((self.tonic + x) % 12 for x in triads[0])

    def pitch_at(self, t: float) -> int:
        cur = self.notes[0][2]
        for s, _, p in self.notes:
            if s > t + 1e-6:
                break
            cur = p
        return cur

    def beats(self, step_q: float) -> Iterable[float]:
        """Times (s) of a grid with a step of `step_q` quarter notes covering the clip."""
        n = int(math.ceil((self.T + 0.5) / (step_q * self.spb)))
        return (i * step_q * self.spb for i in range(n))


def _place(pitches: list[int], lo: int, hi: int, rng: np.random.Generator) -> list[int]:
    """Transpose a line into [lo, hi] (median near a random point of the range's middle), folding outliers."""
    centre = rng.uniform(lo + 0.35 * (hi - lo), lo + 0.65 * (hi - lo))
    shift = int(round(centre - float(np.median(pitches))))
    out = []
    for p in pitches:
        q = p + shift
        while q < lo:
            q += 12
        while q > hi:
            q -= 12
        out.append(max(lo, q))
    return out


def voiced(pcs: Iterable[int], lo: int, hi: int) -> list[int]:
    """All MIDI keys in [lo, hi] with a pitch class in pcs, ascending."""
    pcs = set(pcs)
    return [k for k in range(lo, hi + 1) if k % 12 in pcs]


def _root_below(pcs: tuple[int, ...], ceiling: int, floor: int) -> int:
    root = pcs[0]
    k = ceiling - ((ceiling - root) % 12)
    return k if k >= floor else k + 12


def _vel(rng: np.random.Generator, base: float, spread: float = 10) -> int:
    return int(np.clip(rng.normal(base, spread), 20, 127))


# Each style gets (score, ctx, dynamic level 40..110) and writes events on channels 0.. (9 for percussion).

def style_legato(s: Score, c: Ctx, dyn: float, *, artic: tuple[float, float] = (0.85, 1.0),
                 vibrato_cc: int = 0) -> None:
    if vibrato_cc:
        s.cc(0.0, 1, vibrato_cc)
    a = c.rng.uniform(*artic)
    for t, d, p in c.notes:
        s.note(t, max(0.05, d * a), p, _vel(c.rng, dyn, 8))


def style_bagpipe(s: Score, c: Ctx, dyn: float) -> None:
    # Drone on the tonic below the chanter, as a real set of pipes sounds it
    drone = _root_below((c.tonic,), c.lo - 1, c.lo - 14)
    s.note(0.0, c.T + 0.5, drone, _vel(c.rng, dyn, 4), chan=1)
    style_legato(s, c, dyn, artic=(0.97, 1.0))


def style_erhu(s: Score, c: Ctx, dyn: float) -> None:
    """Legato with portamento glides between notes and delayed vibrato, via pitch bend on a 12-semitone range
    (erhu is GM 110 'Fiddle', the same samples as violin in FluidR3: the gestures are what make it an erhu)."""
    # RPN 0 (pitch-bend sensitivity) = 12 semitones so a glide can span an octave
    for ctrl, val in ((101, 0), (100, 0), (6, 12), (38, 0)):
        s.cc(0.0, ctrl, val)
    rate = c.rng.uniform(5.0, 6.8)
    depth = c.rng.uniform(0.2, 0.45)  # semitones
    glide_p = c.rng.uniform(0.5, 0.85)
    prev = None
    for t, d, p in c.notes:
        s.note(t, d * 0.99 + 0.01, p, _vel(c.rng, dyn, 8))
        g = c.rng.uniform(0.06, 0.16) if prev is not None and prev != p and c.rng.random() < glide_p else 0.0
        start = float(np.clip(prev - p, -11, 11)) if g else 0.0
        step = 0.01
        for i in range(int(d / step) + 1):
            u = i * step
            off = start * (1 - u / g) if g and u < g else 0.0
            onset = min(0.15, d * 0.3)
            vib = depth * math.sin(2 * math.pi * rate * (u - onset)) * min(1.0, max(0.0, (u - onset) / 0.15))
            s.bend(t + u, off + vib)
        prev = p


def style_tremolo(s: Score, c: Ctx, dyn: float) -> None:
    """Pipa lun-zhi tremolo: long notes are re-plucked at 12–18 Hz, short ones plucked once."""
    rate = c.rng.uniform(12.0, 18.0)
    for t, d, p in c.notes:
        if d < 0.22:
            s.note(t, d, p, _vel(c.rng, dyn + 8, 6))
            continue
        n = max(2, int(d * rate))
        for i in range(n):
            s.note(t + i / rate, 1.2 / rate, p, _vel(c.rng, dyn - 4 + 8 * (i % 2), 5))


def style_xylophone(s: Score, c: Ctx, dyn: float) -> None:
    roll = c.rng.uniform(14.0, 20.0)
    for t, d, p in c.notes:
        if d >= 0.45 and c.rng.random() < 0.7:
            for i in range(int(d * roll)):
                s.note(t + i / roll, 0.2, p, _vel(c.rng, dyn - 6, 6))
        else:
            s.note(t, min(d, 0.4), p, _vel(c.rng, dyn + 6, 8))


def style_arpeggio(s: Score, c: Ctx, dyn: float, *, step_q: float | None = None, pentatonic: bool = False,
                   sweeps: bool = False) -> None:
    """Plucked strings: broken chords (bass then up / up-down patterns) under the melody."""
    step_q = step_q or float(c.rng.choice([0.5, 0.5, 0.25]))
    pattern = c.rng.choice(["up", "updown", "pima"])
    top = c.lo + int(0.6 * (c.hi - c.lo))
    for k, t in enumerate(c.beats(step_q)):
        pcs = c.chord_at(t)
        if pentatonic:
            pcs = tuple(sorted({(c.tonic + x) % 12 for x in (0, 2, 4, 7, 9)} & set(pcs)) or pcs)
        keys = voiced(pcs, c.lo, top)[:6] or [c.lo]
        per_bar = max(1, int(round(c.bar / step_q)))
        i = k % per_bar
        if pattern == "up":
            key = keys[i % len(keys)]
        elif pattern == "updown":
            cyc = keys + keys[-2:0:-1]
            key = cyc[i % len(cyc)]
        else:  # thumb on the bass, fingers alternate
            key = keys[0] if i % 2 == 0 else keys[1 + (i // 2) % max(1, len(keys) - 1)] if len(keys) > 1 else keys[0]
        s.note(t, step_q * c.spb * c.rng.uniform(1.5, 3.0), key, _vel(c.rng, dyn - 12 + (8 if i == 0 else 0), 6))
    for t, d, p in c.notes:
        s.note(t, d, min(c.hi, p + 12) if p < top else p, _vel(c.rng, dyn + 4, 6))
    if sweeps:  # guzheng glissando: a fast pentatonic run into phrase starts
        scale = voiced({(c.tonic + x) % 12 for x in (0, 2, 4, 7, 9)}, c.lo, c.hi)
        for t, d, p in c.notes:
            if d >= 2 * c.spb and c.rng.random() < 0.5 and t > 0.3:
                run = [k for k in scale if k <= p][-10:]
                for j, k in enumerate(run):
                    s.note(t - 0.025 * (len(run) - j), 0.3, k, _vel(c.rng, dyn - 20, 5))


def style_banjo(s: Score, c: Ctx, dyn: float) -> None:
    """Three-finger forward rolls in 16ths with the melody note on top."""
    rolls = [[0, 1, 2, 0, 1, 2, 0, 1], [2, 1, 0, 2, 1, 0, 2, 1], [0, 2, 1, 2, 0, 2, 1, 2]]
    roll = rolls[int(c.rng.integers(len(rolls)))]
    for k, t in enumerate(c.beats(0.5 if c.spb < 0.45 else 0.25)):
        keys = voiced(c.chord_at(t), c.lo + 7, c.lo + 24) or [c.lo + 12]
        key = keys[roll[k % 8] % len(keys)]
        s.note(t, 0.35, key, _vel(c.rng, dyn - 8, 7))
    for t, d, p in c.notes:
        s.note(t, min(d, 0.5), p, _vel(c.rng, dyn + 6, 6))


def style_strum(s: Score, c: Ctx, dyn: float) -> None:
    """Ukulele strumming: chords spread over 8–25 ms, down/up pattern on eighths, melody on top."""
    patterns = ["D.DU.UDU", "D.D.DUDU", "DUDUDUDU", "D..UD.DU"]
    pat = patterns[int(c.rng.integers(len(patterns)))]
    spread = c.rng.uniform(0.008, 0.025)
    for k, t in enumerate(c.beats(0.5)):
        stroke = pat[k % 8]
        if stroke == ".":
            continue
        keys = voiced(c.chord_at(t), c.lo, c.lo + 12)[:4] or [c.lo]
        if stroke == "U":
            keys = keys[::-1]
        for j, key in enumerate(keys):
            s.note(t + j * spread, 0.5 * c.spb * c.rng.uniform(1.2, 2.0), key,
                   _vel(c.rng, dyn - (10 if stroke == "U" else 0), 6))
    for t, d, p in c.notes:
        s.note(t, d * 0.9, max(p, c.lo + 12), _vel(c.rng, dyn, 6))


def style_piano(s: Score, c: Ctx, dyn: float) -> None:
    """Melody in the right hand over left-hand block chords, Alberti bass or stride (chosen per clip)."""
    lh = c.rng.choice(["block", "alberti", "stride"])
    mel_lo = 60
    for t, d, p in c.notes:
        s.note(t, d * c.rng.uniform(0.9, 1.0), max(p, mel_lo), _vel(c.rng, dyn + 6, 7))
    if lh == "block":
        for t in c.beats(c.bar / 2 if c.bar >= 4 else c.bar):
            for k in voiced(c.chord_at(t), 48, 60)[:3]:
                s.note(t, c.spb * c.bar / 2 * 0.95, k, _vel(c.rng, dyn - 10, 5))
    elif lh == "alberti":
        for i, t in enumerate(c.beats(0.5)):
            keys = voiced(c.chord_at(t), 48, 60)[:3] or [48]
            key = keys[[0, 2, 1, 2][i % 4] % len(keys)]
            s.note(t, 0.5 * c.spb, key, _vel(c.rng, dyn - 14, 5))
    else:
        for i, t in enumerate(c.beats(1.0)):
            pcs = c.chord_at(t)
            if i % 2 == 0:
                s.note(t, c.spb * 0.9, _root_below(pcs, 47, 36), _vel(c.rng, dyn - 6, 5))
            else:
                for k in voiced(pcs, 52, 64)[:3]:
                    s.note(t, c.spb * 0.6, k, _vel(c.rng, dyn - 14, 5))


def style_accordion(s: Score, c: Ctx, dyn: float) -> None:
    """Melody on the treble keys, Stradella-style bass note on the downbeat and chords on the other beats."""
    style_legato(s, c, dyn, artic=(0.9, 1.0))
    for i, t in enumerate(c.beats(1.0)):
        pcs = c.chord_at(t)
        if i % max(1, int(c.bar)) == 0:
            s.note(t, c.spb * 0.8, _root_below(pcs, 52, 40), _vel(c.rng, dyn - 6, 5), chan=1)
        else:
            for k in voiced(pcs, 53, 64)[:3]:
                s.note(t, c.spb * 0.5, k, _vel(c.rng, dyn - 14, 5), chan=1)


def style_bass(s: Score, c: Ctx, dyn: float, *, tuba: bool = False) -> None:
    """Bass lines: the melody itself, or root/fifth patterns of the harmony (tuba: oom-pah half notes)."""
    if c.rng.random() < 0.4:
        style_legato(s, c, dyn, artic=(0.6, 0.95))
        return
    step = 2.0 if tuba else float(c.rng.choice([1.0, 0.5]))
    for i, t in enumerate(c.beats(step)):
        pcs = c.chord_at(t)
        root = _root_below(pcs, c.lo + 12, c.lo)
        fifth = root + 7 if root + 7 <= c.hi else root - 5
        key = [root, fifth, root + 12 if root + 12 <= c.hi else root, fifth][i % 4] if not tuba else (
            root if i % 2 == 0 else fifth)
        s.note(t, step * c.spb * c.rng.uniform(0.55, 0.9), key, _vel(c.rng, dyn, 7))


_KIT = {"kick": 36, "snare": 38, "hat": 42, "open": 46, "ride": 51, "crash": 49, "tom_hi": 50, "tom_mid": 47,
        "tom_lo": 45, "side": 37}


def style_drum(s: Score, c: Ctx, dyn: float) -> None:
    """Kit grooves (rock, shuffle, half-time, 16th disco, waltz for 3/4 tunes) with tom fills and crashes;
    extra kicks follow the melody's rhythm, so the groove is tied to its melody source."""
    r = c.rng
    grooves = ["rock", "shuffle", "half", "disco"] if c.bar != 3 else ["waltz"]
    g = grooves[int(r.integers(len(grooves)))]
    cym = "ride" if r.random() < 0.3 else "hat"
    bar_s = c.bar * c.spb
    n_bars = int(c.T / bar_s) + 2
    fill_every = int(r.choice([2, 4]))
    for b in range(n_bars):
        t0 = b * bar_s
        if b % fill_every == 0:
            s.note(t0, 0.5, _KIT["crash"], _vel(r, dyn + 5), chan=PERC)
        fill = b % fill_every == fill_every - 1
        steps = int(c.bar * 4)  # 16ths
        for i in range(steps):
            t = t0 + i * c.spb / 4
            q = i / 4  # position in quarter notes
            if fill and q >= c.bar - 1:
                drum = ["tom_hi", "tom_mid", "tom_lo", "snare"][i % 4]
                s.note(t, 0.2, _KIT[drum], _vel(r, dyn + 4), chan=PERC)
                continue
            if g == "shuffle":
                if i % 4 in (0, 3):  # swung eighths: on the beat and the last triplet (quantised to 16ths)
                    s.note(t, 0.1, _KIT[cym], _vel(r, dyn - 12), chan=PERC)
            elif g == "disco":
                s.note(t, 0.1, _KIT["open"] if i % 4 == 2 else _KIT["hat"], _vel(r, dyn - 16), chan=PERC)
            elif i % 2 == 0:
                s.note(t, 0.1, _KIT[cym], _vel(r, dyn - (8 if i % 4 == 0 else 16)), chan=PERC)
            if i % 4:
                continue
            beat = i // 4
            if g == "waltz":
                s.note(t, 0.2, _KIT["kick"] if beat == 0 else _KIT["snare"], _vel(r, dyn - (0 if beat == 0 else 10)),
                       chan=PERC)
            elif g == "half":
                if beat == 0:
                    s.note(t, 0.2, _KIT["kick"], _vel(r, dyn), chan=PERC)
                if beat == 2:
                    s.note(t, 0.2, _KIT["snare"], _vel(r, dyn + 4), chan=PERC)
            else:
                if beat % 2 == 0 or g == "disco":
                    s.note(t, 0.2, _KIT["kick"], _vel(r, dyn), chan=PERC)
                if beat % 2 == 1:
                    s.note(t, 0.2, _KIT["snare"], _vel(r, dyn + 2), chan=PERC)
    for t, d, p in c.notes:  # syncopated kicks where the melody moves off the beat
        if (t / c.spb) % 1 > 0.2 and r.random() < 0.5:
            s.note(t, 0.15, _KIT["kick"], _vel(r, dyn - 10), chan=PERC)


def style_congas(s: Score, c: Ctx, dyn: float) -> None:
    """Conga tumbao (open tones on the and-of-4, slaps on 2) plus strokes on the melody's onsets,
    high conga for high melody notes and low (tumba) for low ones."""
    r = c.rng
    MUTE, OPEN, LOW = 62, 63, 64
    tumbao = {0: MUTE, 2: MUTE, 4: OPEN, 6: MUTE, 7: OPEN, 8: MUTE, 12: LOW, 14: LOW}
    bar_s = c.bar * c.spb
    for b in range(int(c.T / bar_s) + 2):
        for i in range(int(c.bar * 4)):
            key = tumbao.get(i % 16)
            if key is not None and r.random() < 0.9:
                s.note(b * bar_s + i * c.spb / 4, 0.2, key, _vel(r, dyn - (6 if key == MUTE else 0)), chan=PERC)
    mid = float(np.median([p for _, _, p in c.notes]))
    for t, d, p in c.notes:
        if r.random() < 0.6:
            s.note(t + 0.01, 0.2, OPEN if p >= mid else LOW, _vel(r, dyn + 4), chan=PERC)


def style_sfx(s: Score, c: Ctx, dyn: float) -> None:
    """GM sound effects (120–127): sustained events of varied length, pitch following the melody loosely."""
    t = 0.0
    for _, d, p in c.notes:
        dur = max(0.4, d * c.rng.uniform(1.0, 3.0))
        s.note(t, dur, int(np.clip(p, 48, 84)), _vel(c.rng, dyn, 8))
        t += dur + c.rng.uniform(0.0, 0.15)
        if t > c.T:
            break


def perc_single(key: int) -> Callable:
    def style(s: Score, c: Ctx, dyn: float) -> None:
        """One percussion instrument playing the melody's rhythm plus a steady pulse."""
        for t, _, _ in c.notes:
            s.note(t, 0.2, key, _vel(c.rng, dyn + 5), chan=PERC)
        for t in c.beats(1.0):
            if c.rng.random() < 0.5:
                s.note(t, 0.2, key, _vel(c.rng, dyn - 15), chan=PERC)
    return style


@dataclass(frozen=True)
class Instrument:
    program: int  # GM program (0-based); -1 = percussion kit on channel 10
    lo: int  # playing range (MIDI)
    hi: int
    style: Callable
    tempo: tuple[float, float] = (72, 132)  # quarter notes per minute
    prefer: str = ""  # melody source preferred half of the time (e.g. Chinese folk songs for erhu)
    chan1_program: int | None = None  # program of channel 1 (accompaniment / drone), default = program


def _legato(**kw):
    return lambda s, c, d: style_legato(s, c, d, **kw)


# SynthMUSIC-21: GM has exact programs for 14 classes; erhu (110 Fiddle), guzheng (107 Koto), pipa (106 Shamisen)
# and ukulele (24 Nylon Guitar) are proxies whose playing styles carry the identity.
INSTRUMENTS: dict[str, Instrument] = {
    "accordion": Instrument(21, 60, 84, style_accordion, (84, 140)),
    "acoustic guitar": Instrument(25, 40, 79, style_arpeggio, (66, 120)),
    "bagpipe": Instrument(109, 62, 81, style_bagpipe, (72, 120)),
    "banjo": Instrument(105, 50, 84, style_banjo, (90, 150)),
    "bassoon": Instrument(70, 34, 67, _legato(artic=(0.75, 1.0)), (60, 120)),
    "cello": Instrument(42, 36, 69, _legato(artic=(0.92, 1.0), vibrato_cc=50), (54, 104)),
    "clarinet": Instrument(71, 52, 86, _legato(), (66, 126)),
    "congas": Instrument(-1, 40, 80, style_congas, (84, 132)),
    "drum": Instrument(-1, 40, 80, style_drum, (80, 140)),
    "electric bass": Instrument(33, 28, 55, style_bass, (80, 132), prefer="bach"),
    "erhu": Instrument(110, 62, 88, style_erhu, (54, 100), prefer="essenFolksong/han"),
    "flute": Instrument(73, 62, 93, _legato(artic=(0.8, 1.0)), (72, 132)),
    "guzheng": Instrument(107, 45, 86, lambda s, c, d: style_arpeggio(s, c, d, step_q=0.25, pentatonic=True,
                                                                       sweeps=True), (60, 104),
                          prefer="essenFolksong/han"),
    "piano": Instrument(0, 36, 96, style_piano, (66, 132)),
    "pipa": Instrument(106, 52, 84, style_tremolo, (54, 96), prefer="essenFolksong/han"),
    "saxophone": Instrument(65, 49, 80, _legato(artic=(0.7, 1.0)), (72, 132)),
    "trumpet": Instrument(56, 55, 82, _legato(artic=(0.65, 0.95)), (80, 132)),
    "tuba": Instrument(58, 28, 55, lambda s, c, d: style_bass(s, c, d, tuba=True), (66, 112), prefer="bach"),
    "ukulele": Instrument(24, 60, 81, style_strum, (84, 132)),
    "violin": Instrument(40, 55, 93, _legato(artic=(0.9, 1.0), vibrato_cc=40), (60, 120)),
    "xylophone": Instrument(13, 65, 96, style_xylophone, (84, 140)),
}


# The embedding corpus's extra vocabulary: other GM programs, SFX and single percussion instruments. Each entry:
# label -> (Instrument, noun phrase for captions, kind). Kinds shape the caption templates.
def _extra_instruments() -> dict[str, tuple[Instrument, str]]:
    mel = {
        "church organ": (19, 36, 84, "melodic"), "harp": (46, 40, 88, "plucked"), "marimba": (12, 48, 84, "melodic"),
        "vibraphone": (11, 53, 89, "melodic"), "harpsichord": (6, 41, 84, "keys"), "celesta": (8, 60, 96, "melodic"),
        "glockenspiel": (9, 72, 105, "melodic"), "music box": (10, 60, 96, "melodic"),
        "tubular bells": (14, 60, 77, "melodic"), "harmonica": (22, 60, 84, "melodic"),
        "electric guitar": (27, 40, 81, "plucked"), "distorted guitar": (30, 40, 76, "melodic"),
        "viola": (41, 48, 81, "melodic"), "double bass": (43, 28, 55, "bass"), "timpani": (47, 40, 55, "bass"),
        "string ensemble": (48, 43, 84, "keys"), "choir": (52, 48, 79, "melodic"), "trombone": (57, 40, 72, "melodic"),
        "french horn": (60, 41, 77, "melodic"), "oboe": (68, 58, 89, "melodic"), "piccolo": (72, 74, 102, "melodic"),
        "recorder": (74, 60, 91, "melodic"), "pan flute": (75, 60, 89, "melodic"), "sitar": (104, 48, 77, "melodic"),
        "kalimba": (108, 60, 84, "plucked"), "steel drums": (114, 52, 81, "melodic"),
        "synthesizer": (80, 48, 84, "melodic"), "whistling": (78, 58, 78, "melodic"),  # TimGM6mb: silent above 78
    }
    sfx = {"ocean waves": 122, "birds chirping": 123, "telephone ringing": 124, "helicopter": 125,
           "applause": 126, "gunshots": 127, "breathing": 121}
    perc = {"tambourine": 54, "cowbell": 56, "hand claps": 39, "bongos": 60, "triangle": 81, "maracas": 70,
            "timbales": 65, "woodblock": 76, "castanets": 85}
    out: dict[str, tuple[Instrument, str]] = {}
    styles = {"melodic": _legato(), "plucked": style_arpeggio, "keys": style_piano, "bass": style_bass}
    for label, (prog, lo, hi, kind) in mel.items():
        out[label] = (Instrument(prog, lo, hi, styles[kind], (60, 132)), kind)
    for label, prog in sfx.items():
        out[label] = (Instrument(prog, 48, 84, style_sfx, (60, 120)), "sfx")
    for label, key in perc.items():
        out[label] = (Instrument(-1, 40, 80, perc_single(key), (72, 132)), "perc")
    return out


EXTRA_INSTRUMENTS: dict[str, tuple[Instrument, str]] = _extra_instruments()
_KIND_OF_CLASS = {"congas": "perc", "drum": "perc", "electric bass": "bass", "tuba": "bass", "piano": "keys",
                  "accordion": "keys", "acoustic guitar": "plucked", "banjo": "plucked", "guzheng": "plucked",
                  "ukulele": "plucked", "pipa": "plucked"}


def embedding_labels() -> tuple[str, ...]:
    """The 21 classes plus the extra vocabulary of the embedding corpus."""
    return CLASSES + tuple(EXTRA_INSTRUMENTS)


def label_kind(label: str) -> str:
    if label in EXTRA_INSTRUMENTS:
        return EXTRA_INSTRUMENTS[label][1]
    return _KIND_OF_CLASS.get(label, "melodic")


_SFX_PHRASES = {"ocean waves": ["ocean waves crashing", "waves washing on a shore", "the sea"],
                "birds chirping": ["birds chirping", "a bird singing", "birdsong"],
                "telephone ringing": ["a telephone ringing", "a phone rings", "an old telephone bell"],
                "helicopter": ["a helicopter flying", "helicopter rotor noise", "a helicopter passing"],
                "applause": ["an audience applauding", "people clapping", "a crowd applauds"],
                "gunshots": ["gunshots", "a gun firing", "shots being fired"],
                "breathing": ["someone breathing", "heavy breathing", "breath noise"]}


def captions_for(label: str, tempo_qpm: float, rng: np.random.Generator) -> tuple[str, list[str]]:
    """Varied captions of one clip (deterministic from rng): (the chosen caption, all variants)."""
    kind = label_kind(label)
    speed = "slow" if tempo_qpm < 80 else "fast" if tempo_qpm > 115 else "lively" if tempo_qpm > 100 else "gentle"
    art = "an" if label[0] in "aeiou" else "a"
    if kind == "sfx":
        phrases = _SFX_PHRASES[label]
        variants = [f"the sound of {label}", *phrases, f"a recording of {phrases[0]}"]
    elif kind == "perc":
        variants = [f"the sound of {label}", f"{label} playing a {speed} rhythm", f"someone playing {label}",
                    f"a {speed} {label} pattern", f"percussion: {label}", f"{label} groove"]
    else:
        noun = {"melodic": "melody", "plucked": "tune", "keys": "piece", "bass": "bass line"}[kind]
        variants = [f"the sound of {label}", f"{art} {label} playing a {speed} {noun}", f"{label} music",
                    f"someone playing the {label}", f"a solo {label}", f"a recording of {art} {label}",
                    f"a {speed} {noun} on the {label}"]
    return variants[int(rng.integers(len(variants)))], variants


def instrument_for(label: str) -> Instrument:
    if label in INSTRUMENTS:
        return INSTRUMENTS[label]
    if label in EXTRA_INSTRUMENTS:
        return EXTRA_INSTRUMENTS[label][0]
    raise KeyError(f"unknown instrument label {label!r}")


# ------------------------------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------------------------------

class Renderer:
    """FluidSynth on one SoundFont, a fresh synth per clip.

    Why fresh: a reused synth (even after system_reset) mixes voices in an order that depends on earlier clips and
    its first render differs from later ones, so bytes would depend on build order. With dynamic sample loading a
    new synth costs ~50 ms (only the selected presets' samples are read). Reverb and chorus are off (they keep
    state; bimodal.synth.room adds a seeded room instead); output is float (the s16 path of `get_samples`
    dithers with a running index)."""

    def __init__(self, sf2: str | Path, sample_rate: int = RENDER_SR):
        import fluidsynth

        self._fs = fluidsynth
        self.sf2 = str(sf2)
        if not Path(self.sf2).is_file():
            raise FileNotFoundError(f"{self.sf2}: SoundFont not found")
        self.sample_rate = sample_rate
        self._write = fluidsynth.cfunc(
            "fluid_synth_write_float", ctypes.c_int, ("synth", ctypes.c_void_p, 1), ("len", ctypes.c_int, 1),
            ("lout", ctypes.c_void_p, 1), ("loff", ctypes.c_int, 1), ("lincr", ctypes.c_int, 1),
            ("rout", ctypes.c_void_p, 1), ("roff", ctypes.c_int, 1), ("rincr", ctypes.c_int, 1))

    def _new_synth(self, program: int, chan1_program: int):
        synth = self._fs.Synth(gain=0.5, samplerate=float(self.sample_rate), **{
            "synth.reverb.active": 0, "synth.chorus.active": 0, "synth.dynamic-sample-loading": 1})
        sfid = synth.sfload(self.sf2)
        if sfid < 0:
            synth.delete()
            raise RuntimeError(f"{self.sf2}: FluidSynth could not load the SoundFont")
        if program >= 0:
            synth.program_select(0, sfid, 0, program)
            synth.program_select(1, sfid, 0, chan1_program)
        synth.program_select(PERC, sfid, 128, 0)
        return synth

    def render(self, score: Score, n_samples: int, program: int, chan1_program: int | None = None) -> np.ndarray:
        """Mono float32 [n_samples] at self.sample_rate."""
        total = -(-n_samples // BLOCK) * BLOCK
        synth = self._new_synth(program, program if chan1_program is None else chan1_program)
        out = np.zeros((total, 2), dtype=np.float32)

        def advance(to: int) -> None:
            to = min(to, total)
            if to > advance.pos:
                buf = out[advance.pos:to]  # a contiguous view: interleaved L/R floats
                ptr = buf.ctypes.data
                self._write(synth.synth, to - advance.pos, ptr, 0, 2, ptr, 1, 2)
                advance.pos = to

        advance.pos = 0

        try:
            self._play(synth, score, advance, total)
        finally:
            synth.delete()
        return out[:n_samples].mean(axis=1)

    def _play(self, synth, score: Score, advance, total: int) -> None:
        for ev in score.timeline():
            # FluidSynth renders 64-sample blocks and hands out the rest of a block on the next call; advancing
            # in whole blocks keeps every clip starting on a fresh block (events land on a 2.9 ms grid at 22 kHz)
            advance(int(round(ev.t * self.sample_rate / BLOCK)) * BLOCK)
            if advance.pos >= total:
                break
            if ev.kind == "on":
                synth.noteon(ev.chan, ev.a, ev.b)
            elif ev.kind == "off":
                synth.noteoff(ev.chan, ev.a)
            elif ev.kind == "bend":
                synth.pitch_bend(ev.chan, ev.a)
            elif ev.kind == "cc":
                synth.cc(ev.chan, ev.a, ev.b)
        advance(total)


@lru_cache(maxsize=4)
def get_renderer(sf2: str) -> Renderer:
    return Renderer(sf2)


def room(wave: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    """A synthetic room: exponentially decaying noise impulse response (RT60 0.15–0.8 s) mixed in at 5–30 %.
    Hand-written because FluidSynth's own reverb keeps state across clips (breaks per-clip determinism)."""
    from scipy.signal import fftconvolve

    rt60 = rng.uniform(0.15, 0.8)
    n = int(rt60 * sr)
    t = np.arange(n) / sr
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    ir /= np.sqrt(np.sum(ir**2)) + 1e-12
    wet = fftconvolve(wave, ir)[: len(wave)].astype(np.float32)
    mix = rng.uniform(0.05, 0.3)
    return (1 - mix) * wave + mix * wet * (np.sqrt(np.mean(wave**2)) / (np.sqrt(np.mean(wet**2)) + 1e-12))


TARGET_RMS = 0.08  # ≈ -22 dBFS; peaks are limited to PEAK
PEAK = 0.95


def gap_fraction(wave: np.ndarray, sr: int, frame_s: float = 0.1, rel_db: float = -40.0) -> float:
    """Fraction of 100 ms frames quieter than rel_db below the clip's RMS (silent gaps)."""
    f = int(frame_s * sr)
    n = len(wave) // f
    if n == 0:
        return 1.0
    frames = wave[: n * f].reshape(n, f)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    ref = np.sqrt(np.mean(wave**2)) + 1e-12
    return float(np.mean(rms < ref * 10 ** (rel_db / 20)))


def render_clip(label: str, melodies: tuple[Melody, ...], seed_seq: list[int], *, n_samples: int,
                sample_rate: int = 11025, sf2: str | Path | None = None, max_tries: int = 6) -> tuple[np.ndarray, dict]:
    """Render one clip of `label` with a melody drawn from `melodies`; a pure function of seed_seq.

    Returns (mono float32 [n_samples] at sample_rate, info dict with melody_id, tempo, transposition, caption
    fields...). A rendering with silent gaps (>15 % of 100 ms frames) is redrawn, up to max_tries.
    """
    inst = instrument_for(label)
    renderer = get_renderer(str(sf2 or fluidr3_path()))
    rng = np.random.default_rng(seed_seq)
    preferred = [m for m in melodies if inst.prefer and m.melody_id.startswith(inst.prefer)]
    T = n_samples / sample_rate
    n_render = int(math.ceil(T * RENDER_SR)) + 256
    last = None
    for attempt in range(max_tries):
        pool = preferred if preferred and rng.random() < 0.5 else melodies
        mel = pool[int(rng.integers(len(pool)))]
        qpm = rng.uniform(*inst.tempo)
        spb = 60.0 / qpm
        # loop the melody from a random note until the clip is full (rests were removed at extraction)
        start = int(rng.integers(len(mel.pitches)))
        line_p, line_t, line_d, t = [], [], [], 0.0
        i = start
        while t < T + 1.0:
            line_p.append(mel.pitches[i])
            line_t.append(t)
            line_d.append(mel.durs[i] * spb)
            t += mel.durs[i] * spb
            i = (i + 1) % len(mel.pitches)
        placed = _place(line_p, inst.lo, inst.hi, rng)
        ctx = Ctx(rng, spb, T, list(zip(line_t, line_d, placed)), (mel.tonic + placed[0] - line_p[0]) % 12,
                  mel.minor, mel.bar, inst.lo, inst.hi)
        score = Score()
        dyn = rng.uniform(60, 105)
        inst.style(score, ctx, dyn)
        hi_rate = renderer.render(score, n_render, inst.program, inst.chan1_program)
        wave = resample(hi_rate, RENDER_SR, sample_rate)[:n_samples].astype(np.float32)
        if len(wave) < n_samples:
            wave = np.pad(wave, (0, n_samples - len(wave)))
        wave = room(wave, rng, sample_rate).astype(np.float32)
        rms = float(np.sqrt(np.mean(wave**2)))
        info = {"melody_id": mel.melody_id, "group": mel.group, "tempo": round(qpm, 2),
                "transpose": int(placed[0] - line_p[0]), "attempt": attempt}
        if rms > 0:
            wave = wave * (TARGET_RMS / rms)
            peak = float(np.max(np.abs(wave)))
            if peak > PEAK:
                wave = wave * (PEAK / peak)
        last = (wave.astype(np.float32), info)
        if rms > 1e-4 and gap_fraction(wave, sample_rate) <= 0.15:
            return last
    assert last is not None
    if float(np.sqrt(np.mean(last[0] ** 2))) <= 1e-4:
        raise RuntimeError(f"{label}: rendering stayed silent after {max_tries} tries (seed {seed_seq})")
    return last
