"""The SoundFonts that render the datasets: FluidR3 for SynthMUSIC-21 (the separator's domain) and the corpus
SoundFonts of the joint-embedding corpus (never FluidR3)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

FLUIDR3 = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


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
    return _debian_soundfont(
        CSOUND_GM, "BIMODAL_CSOUND_SF2", "the csound GM SoundFont (sf_GMbank.sf2)", "csound-soundfont (`make setup`)"
    )


OPL3_FM = Path("/usr/share/sounds/sf2/OPL-3_FM_128M.sf2")


def opl3_path() -> Path:
    return _debian_soundfont(OPL3_FM, "BIMODAL_OPL3_SF2", "the OPL3 FM SoundFont", "opl3-soundfont")


# SoundFonts the joint-embedding corpus may be rendered with. Never FluidR3 (or a SoundFont derived from it, such
# as MuseScore General): that is SynthMUSIC-21's, the separator's domain, on which the surrogate is evaluated.
CORPUS_SOUNDFONTS: dict[str, Callable[[], Path]] = {
    "timgm6mb": timgm6mb_path,
    "csound": csound_gm_path,
    "opl3": opl3_path,
}  # OPL3: FM synthesis, far from samples


# Labels a corpus SoundFont has no sound for (their rendering stays silent): the corpus leaves them out.
SOUNDFONT_SILENT_LABELS: dict[str, tuple[str, ...]] = {"opl3": ("triangle", "castanets")}  # empty drum keys 81, 85


def corpus_soundfont(name: str) -> Path:
    """Path of a corpus SoundFont by name (see CORPUS_SOUNDFONTS)."""
    if name not in CORPUS_SOUNDFONTS:
        raise ValueError(f"unknown corpus SoundFont {name!r}; choose from {', '.join(CORPUS_SOUNDFONTS)}")
    return CORPUS_SOUNDFONTS[name]()
