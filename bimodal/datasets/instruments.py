"""The instruments of SynthMUSIC-21 and of the embedding corpus's extra vocabulary (GM program, range, playing style,
tempo) and the captions of the embedding corpus."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from bimodal.datasets.labels import CLASSES
from bimodal.datasets.styles import (
    perc_single,
    style_accordion,
    style_arpeggio,
    style_bagpipe,
    style_banjo,
    style_bass,
    style_congas,
    style_drum,
    style_erhu,
    style_legato,
    style_piano,
    style_sfx,
    style_strum,
    style_tremolo,
    style_xylophone,
)


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
    "guzheng": Instrument(
        107,
        45,
        86,
        lambda s, c, d: style_arpeggio(s, c, d, step_q=0.25, pentatonic=True, sweeps=True),
        (60, 104),
        prefer="essenFolksong/han",
    ),
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
        "church organ": (19, 36, 84, "melodic"),
        "harp": (46, 40, 88, "plucked"),
        "marimba": (12, 48, 84, "melodic"),
        "vibraphone": (11, 53, 89, "melodic"),
        "harpsichord": (6, 41, 84, "keys"),
        "celesta": (8, 60, 96, "melodic"),
        "glockenspiel": (9, 72, 105, "melodic"),
        "music box": (10, 60, 96, "melodic"),
        "tubular bells": (14, 60, 77, "melodic"),
        "harmonica": (22, 60, 84, "melodic"),
        "electric guitar": (27, 40, 81, "plucked"),
        "distorted guitar": (30, 40, 76, "melodic"),
        "viola": (41, 48, 81, "melodic"),
        "double bass": (43, 28, 55, "bass"),
        "timpani": (47, 40, 55, "bass"),
        "string ensemble": (48, 43, 84, "keys"),
        "choir": (52, 48, 79, "melodic"),
        "trombone": (57, 40, 72, "melodic"),
        "french horn": (60, 41, 77, "melodic"),
        "oboe": (68, 58, 89, "melodic"),
        "piccolo": (72, 74, 102, "melodic"),
        "recorder": (74, 60, 91, "melodic"),
        "pan flute": (75, 60, 89, "melodic"),
        "sitar": (104, 48, 77, "melodic"),
        "kalimba": (108, 60, 84, "plucked"),
        "steel drums": (114, 52, 81, "melodic"),
        "synthesizer": (80, 48, 84, "melodic"),
        "whistling": (78, 58, 78, "melodic"),  # TimGM6mb: silent above 78
    }
    sfx = {
        "ocean waves": 122,
        "birds chirping": 123,
        "telephone ringing": 124,
        "helicopter": 125,
        "applause": 126,
        "gunshots": 127,
        "breathing": 121,
    }
    perc = {
        "tambourine": 54,
        "cowbell": 56,
        "hand claps": 39,
        "bongos": 60,
        "triangle": 81,
        "maracas": 70,
        "timbales": 65,
        "woodblock": 76,
        "castanets": 85,
    }
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
_KIND_OF_CLASS = {
    "congas": "perc",
    "drum": "perc",
    "electric bass": "bass",
    "tuba": "bass",
    "piano": "keys",
    "accordion": "keys",
    "acoustic guitar": "plucked",
    "banjo": "plucked",
    "guzheng": "plucked",
    "ukulele": "plucked",
    "pipa": "plucked",
}


def embedding_labels() -> tuple[str, ...]:
    """The 21 classes plus the extra vocabulary of the embedding corpus."""
    return CLASSES + tuple(EXTRA_INSTRUMENTS)


def label_kind(label: str) -> str:
    if label in EXTRA_INSTRUMENTS:
        return EXTRA_INSTRUMENTS[label][1]
    return _KIND_OF_CLASS.get(label, "melodic")


_SFX_PHRASES = {
    "ocean waves": ["ocean waves crashing", "waves washing on a shore", "the sea"],
    "birds chirping": ["birds chirping", "a bird singing", "birdsong"],
    "telephone ringing": ["a telephone ringing", "a phone rings", "an old telephone bell"],
    "helicopter": ["a helicopter flying", "helicopter rotor noise", "a helicopter passing"],
    "applause": ["an audience applauding", "people clapping", "a crowd applauds"],
    "gunshots": ["gunshots", "a gun firing", "shots being fired"],
    "breathing": ["someone breathing", "heavy breathing", "breath noise"],
}


def captions_for(label: str, tempo_qpm: float, rng: np.random.Generator) -> tuple[str, list[str]]:
    """Varied captions of one clip (deterministic from rng): (the chosen caption, all variants)."""
    kind = label_kind(label)
    speed = "slow" if tempo_qpm < 80 else "fast" if tempo_qpm > 115 else "lively" if tempo_qpm > 100 else "gentle"
    art = "an" if label[0] in "aeiou" else "a"
    if kind == "sfx":
        phrases = _SFX_PHRASES[label]
        variants = [f"the sound of {label}", *phrases, f"a recording of {phrases[0]}"]
    elif kind == "perc":
        variants = [
            f"the sound of {label}",
            f"{label} playing a {speed} rhythm",
            f"someone playing {label}",
            f"a {speed} {label} pattern",
            f"percussion: {label}",
            f"{label} groove",
        ]
    else:
        noun = {"melodic": "melody", "plucked": "tune", "keys": "piece", "bass": "bass line"}[kind]
        variants = [
            f"the sound of {label}",
            f"{art} {label} playing a {speed} {noun}",
            f"{label} music",
            f"someone playing the {label}",
            f"a solo {label}",
            f"a recording of {art} {label}",
            f"a {speed} {noun} on the {label}",
        ]
    return variants[int(rng.integers(len(variants)))], variants


def instrument_for(label: str) -> Instrument:
    if label in INSTRUMENTS:
        return INSTRUMENTS[label]
    if label in EXTRA_INSTRUMENTS:
        return EXTRA_INSTRUMENTS[label][0]
    raise KeyError(f"unknown instrument label {label!r}")
