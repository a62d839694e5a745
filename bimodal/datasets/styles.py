"""Per-instrument playing styles: a placed melody and its harmony become the timed MIDI events of one clip
(chords, arpeggios, grooves, tremolo, glides + vibrato, ...).

Why hand-written: no library turns a melody into idiomatic accompaniment patterns per instrument.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

PERC = 9  # the General MIDI percussion channel


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
        triads = (
            [(0, 3, 7), (7, 11, 2), (5, 8, 0), (8, 0, 3), (3, 7, 10)]
            if self.minor
            else [(0, 4, 7), (7, 11, 2), (5, 9, 0), (9, 0, 4), (2, 5, 9)]
        )
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


def style_legato(
    s: Score, c: Ctx, dyn: float, *, artic: tuple[float, float] = (0.85, 1.0), vibrato_cc: int = 0
) -> None:
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


def style_arpeggio(
    s: Score, c: Ctx, dyn: float, *, step_q: float | None = None, pentatonic: bool = False, sweeps: bool = False
) -> None:
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
            s.note(
                t + j * spread,
                0.5 * c.spb * c.rng.uniform(1.2, 2.0),
                key,
                _vel(c.rng, dyn - (10 if stroke == "U" else 0), 6),
            )
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
        key = (
            [root, fifth, root + 12 if root + 12 <= c.hi else root, fifth][i % 4]
            if not tuba
            else (root if i % 2 == 0 else fifth)
        )
        s.note(t, step * c.spb * c.rng.uniform(0.55, 0.9), key, _vel(c.rng, dyn, 7))


_KIT = {
    "kick": 36,
    "snare": 38,
    "hat": 42,
    "open": 46,
    "ride": 51,
    "crash": 49,
    "tom_hi": 50,
    "tom_mid": 47,
    "tom_lo": 45,
    "side": 37,
}


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
                s.note(
                    t,
                    0.2,
                    _KIT["kick"] if beat == 0 else _KIT["snare"],
                    _vel(r, dyn - (0 if beat == 0 else 10)),
                    chan=PERC,
                )
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
    for t, _, _ in c.notes:  # syncopated kicks where the melody moves off the beat
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
    for t, _, p in c.notes:
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
