"""Synthetic instrument clips from a real SoundFont synthesizer: the core of SynthMUSIC-21 and of the
joint-embedding corpus.

Pipeline of one clip (a pure function of its seed sequence, so the same seed gives identical bytes):

    melody (bimodal.datasets.melodies)
      -> per-class playing style (bimodal.datasets.styles) as timed MIDI events
      -> FluidSynth (a fresh synth per clip) at 22050 Hz, float output
      -> resample to the dataset rate (bimodal.audio.resample), synthetic room, loudness normalisation.

Why hand-written: pretty_midi.fluidsynth() reloads the SoundFont on every call and mixes to one channel.
"""

from __future__ import annotations

import ctypes
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from bimodal.audio import resample
from bimodal.datasets.instruments import instrument_for
from bimodal.datasets.melodies import Melody
from bimodal.datasets.soundfonts import fluidr3_path
from bimodal.datasets.styles import PERC, Ctx, Score, _place

RENDER_SR = 22050  # FluidSynth rate; an exact 2x of the dataset's 11025 Hz keeps the resampler cheap
BLOCK = 64  # FluidSynth's internal block size (samples)


class Renderer:
    """FluidSynth on one SoundFont, a fresh synth per clip.

    Why fresh: a reused synth (even after system_reset) mixes voices in an order that depends on earlier clips and
    its first render differs from later ones, so bytes would depend on build order. With dynamic sample loading a
    new synth costs ~50 ms (only the selected presets' samples are read). Reverb and chorus are off (they keep
    state; bimodal.datasets.render.room adds a seeded room instead); output is float (the s16 path of `get_samples`
    dithers with a running index)."""

    def __init__(self, sf2: str | Path, sample_rate: int = RENDER_SR):
        import fluidsynth

        self._fs = fluidsynth
        self.sf2 = str(sf2)
        if not Path(self.sf2).is_file():
            raise FileNotFoundError(f"{self.sf2}: SoundFont not found")
        self.sample_rate = sample_rate
        self._write = fluidsynth.cfunc(
            "fluid_synth_write_float",
            ctypes.c_int,
            ("synth", ctypes.c_void_p, 1),
            ("len", ctypes.c_int, 1),
            ("lout", ctypes.c_void_p, 1),
            ("loff", ctypes.c_int, 1),
            ("lincr", ctypes.c_int, 1),
            ("rout", ctypes.c_void_p, 1),
            ("roff", ctypes.c_int, 1),
            ("rincr", ctypes.c_int, 1),
        )

    def _new_synth(self, program: int, chan1_program: int, bank: int = 0, kit: int = 0):
        synth = self._fs.Synth(
            gain=0.5,
            samplerate=float(self.sample_rate),
            **{"synth.reverb.active": 0, "synth.chorus.active": 0, "synth.dynamic-sample-loading": 1},
        )
        sfid = synth.sfload(self.sf2)
        if sfid < 0:
            synth.delete()
            raise RuntimeError(f"{self.sf2}: FluidSynth could not load the SoundFont")
        if program >= 0:
            synth.program_select(0, sfid, bank, program)
            synth.program_select(1, sfid, bank, chan1_program)
        synth.program_select(PERC, sfid, 128, kit)
        return synth

    def render(
        self,
        score: Score,
        n_samples: int,
        program: int,
        chan1_program: int | None = None,
        *,
        bank: int = 0,
        kit: int = 0,
    ) -> np.ndarray:
        """Mono float32 [n_samples] at self.sample_rate; `bank` selects the melodic preset's bank (FluidR3 keeps
        variations in bank 8), `kit` the percussion kit (bank 128)."""
        total = -(-n_samples // BLOCK) * BLOCK
        synth = self._new_synth(program, program if chan1_program is None else chan1_program, bank, kit)
        out = np.zeros((total, 2), dtype=np.float32)

        def advance(to: int) -> None:
            to = min(to, total)
            if to > advance.pos:
                buf = out[advance.pos : to]  # a contiguous view: interleaved L/R floats
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

# ------------------------------------------------------------------------------------------------------------------
# The varied rendering (data.variety = "varied"): what one class sounds like changes from clip to clip, as it does
# between recordings of real MUSIC-21 videos (instrument, player, room, microphone, level). Drawn from a random
# stream of its own, so the basic rendering of a clip is unchanged. docs/DATA_CARD.md gives the reasons per item.

# FluidR3 presets (bank, program) per class where the bank has more than one fitting instrument; others keep the
# basic program (their variety comes from playing, room and microphone).
VARIED_PRESETS: dict[str, tuple[tuple[int, int], ...]] = {
    "piano": ((0, 0), (0, 1)),  # Yamaha Grand, Bright Yamaha Grand
    "accordion": ((0, 21), (8, 21), (0, 23)),  # Accordion, Italian Accordion, Bandoneon
    "acoustic guitar": ((0, 25), (8, 25)),  # Steel String, 12 String
    "electric bass": ((0, 33), (0, 34)),  # Fingered, Picked
    "saxophone": ((0, 65), (0, 66)),  # Alto, Tenor
    "trumpet": ((0, 56), (0, 59)),  # Trumpet, Muted Trumpet
    "violin": ((0, 40), (8, 40)),  # Violin, Slow Violin
    "guzheng": ((0, 107), (8, 107)),  # Koto, Taisho Koto
    "ukulele": ((0, 24), (8, 24)),  # Nylon String Guitar (the basic proxy), Ukulele
}
VARIED_KITS: dict[str, tuple[int, ...]] = {"drum": (0, 8, 16, 32, 40), "congas": (0, 8, 32)}  # Standard, Room,
# Power, Jazz, Brush kits (bank 128)
VARIED_COLUMNS = ("preset", "velocity_scale", "articulation", "eq_db", "rt60", "wet", "level_db", "snr_db")


def varied_params(label: str, rng: np.random.Generator, program: int) -> dict:
    """The per-clip draws of the varied rendering."""
    presets = VARIED_PRESETS.get(label, ((0, program),))
    bank, prog = presets[int(rng.integers(len(presets)))]
    kits = VARIED_KITS.get(label, (0,))
    eq = [
        (float(np.exp(rng.uniform(np.log(80), np.log(6000)))), float(rng.uniform(-9, 9)), float(rng.uniform(0.5, 2.0)))
        for _ in range(int(rng.integers(1, 4)))
    ]  # (Hz, dB, Q) peaking filters
    return {
        "bank": int(bank),
        "program": int(prog),
        "kit": int(kits[int(rng.integers(len(kits)))]),
        "velocity_scale": float(rng.uniform(0.55, 1.25)),
        "velocity_jitter": float(rng.uniform(0, 14)),
        "articulation": float(rng.uniform(0.55, 1.15)),
        "eq": eq,
        "rt60": float(rng.uniform(0.2, 1.8)),
        "wet": float(rng.uniform(0.1, 0.6)),
        "level_db": float(rng.uniform(-10, 4)),
        "snr_db": float(rng.uniform(30, 55)),
    }


def vary_score(score: Score, p: dict, rng: np.random.Generator) -> Score:
    """Velocity spread (a clip-wide scale and a per-note jitter: SoundFont velocity layers change the timbre) and
    articulation spread (note lengths scaled from staccato-ish to legato)."""
    out = Score()
    out.events = list(score.events)
    for start, end, key, vel, chan in score.notes:
        v = vel * p["velocity_scale"] + rng.normal(0, p["velocity_jitter"])
        out.note(start, max(0.03, (end - start) * p["articulation"]), key, int(round(v)), chan)
    return out


def microphone_eq(wave: np.ndarray, bands: list[tuple[float, float, float]], sr: int) -> np.ndarray:
    """Peaking biquads (RBJ cookbook) for a microphone/room colouring; hand-written as three lines of the
    cookbook since scipy has no peaking-EQ designer."""
    from scipy.signal import lfilter

    for f0, gain_db, q in bands:
        f0 = min(f0, 0.45 * sr)
        a_ = 10 ** (gain_db / 40)
        w0 = 2 * np.pi * f0 / sr
        alpha = np.sin(w0) / (2 * q)
        b = np.array([1 + alpha * a_, -2 * np.cos(w0), 1 - alpha * a_])
        a = np.array([1 + alpha / a_, -2 * np.cos(w0), 1 - alpha / a_])
        wave = lfilter(b / a[0], a / a[0], wave)
    return wave.astype(np.float32)


def room_of(wave: np.ndarray, rng: np.random.Generator, sr: int, rt60: float, mix: float) -> np.ndarray:
    """`room` with a given RT60 and wet share (the varied rendering draws them from wider ranges)."""
    from scipy.signal import fftconvolve

    n = int(rt60 * sr)
    t = np.arange(n) / sr
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    ir /= np.sqrt(np.sum(ir**2)) + 1e-12
    wet = fftconvolve(wave, ir)[: len(wave)].astype(np.float32)
    return (1 - mix) * wave + mix * wet * (np.sqrt(np.mean(wave**2)) / (np.sqrt(np.mean(wet**2)) + 1e-12))


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


def render_clip(
    label: str,
    melodies: tuple[Melody, ...],
    seed_seq: list[int],
    *,
    n_samples: int,
    sample_rate: int = 11025,
    sf2: str | Path | None = None,
    max_tries: int = 6,
    variety: str = "basic",
) -> tuple[np.ndarray, dict]:
    """Render one clip of `label` with a melody drawn from `melodies`; a pure function of seed_seq (and variety).

    Returns (mono float32 [n_samples] at sample_rate, info dict with melody_id, tempo, transposition, caption
    fields...; with variety="varied" also the VARIED_COLUMNS it drew). A rendering with silent gaps (>15 % of
    100 ms frames) is redrawn, up to max_tries.
    """
    inst = instrument_for(label)
    renderer = get_renderer(str(sf2 or fluidr3_path()))
    rng = np.random.default_rng(seed_seq)
    vrng = np.random.default_rng([*seed_seq, 104729]) if variety == "varied" else None  # a stream of its own
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
        ctx = Ctx(
            rng,
            spb,
            T,
            list(zip(line_t, line_d, placed)),
            (mel.tonic + placed[0] - line_p[0]) % 12,
            mel.minor,
            mel.bar,
            inst.lo,
            inst.hi,
        )
        score = Score()
        dyn = rng.uniform(60, 105)
        inst.style(score, ctx, dyn)
        info = {
            "melody_id": mel.melody_id,
            "group": mel.group,
            "tempo": round(qpm, 2),
            "transpose": int(placed[0] - line_p[0]),
            "attempt": attempt,
        }
        if vrng is None:
            hi_rate = renderer.render(score, n_render, inst.program, inst.chan1_program)
        else:
            vp = varied_params(label, vrng, inst.program)
            chan1 = vp["program"] if inst.chan1_program in (None, inst.program) else inst.chan1_program
            hi_rate = renderer.render(
                vary_score(score, vp, vrng),
                n_render,
                vp["program"] if inst.program >= 0 else inst.program,
                chan1,
                bank=vp["bank"],
                kit=vp["kit"],
            )
            info.update(
                preset=f"{128 if inst.program < 0 else vp['bank']}:{vp['kit'] if inst.program < 0 else vp['program']}",
                velocity_scale=round(vp["velocity_scale"], 3),
                articulation=round(vp["articulation"], 3),
                eq_db="|".join(f"{f:.0f}Hz{g:+.1f}" for f, g, _ in vp["eq"]),
                rt60=round(vp["rt60"], 3),
                wet=round(vp["wet"], 3),
                level_db=round(vp["level_db"], 2),
                snr_db=round(vp["snr_db"], 1),
            )
        wave = resample(hi_rate, RENDER_SR, sample_rate)[:n_samples].astype(np.float32)
        if len(wave) < n_samples:
            wave = np.pad(wave, (0, n_samples - len(wave)))
        if vrng is None:
            wave = room(wave, rng, sample_rate).astype(np.float32)
        else:
            wave = room_of(microphone_eq(wave, vp["eq"], sample_rate), vrng, sample_rate, vp["rt60"], vp["wet"])
            wave = wave.astype(np.float32)
        rms = float(np.sqrt(np.mean(wave**2)))
        if rms > 0:
            target = TARGET_RMS if vrng is None else TARGET_RMS * 10 ** (vp["level_db"] / 20)
            wave = wave * (target / rms)
            if vrng is not None:  # a microphone's noise floor, snr_db below the clip's level
                noise = vrng.standard_normal(len(wave)).astype(np.float32)
                wave = wave + noise * target * 10 ** (-vp["snr_db"] / 20)
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
