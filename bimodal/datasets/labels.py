"""The 21 SynthMUSIC-21 classes, their prompts (Table 6) and file-system names."""

from __future__ import annotations

CLASSES: tuple[str, ...] = (
    "accordion",
    "acoustic guitar",
    "bagpipe",
    "banjo",
    "bassoon",
    "cello",
    "clarinet",
    "congas",
    "drum",
    "electric bass",
    "erhu",
    "flute",
    "guzheng",
    "piano",
    "pipa",
    "saxophone",
    "trumpet",
    "tuba",
    "ukulele",
    "violin",
    "xylophone",
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
