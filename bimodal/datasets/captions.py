"""AudioCaps captions -> single-source phrases (Appendix E, Table 5)."""

from __future__ import annotations

import re

# Clause separators, longest first. "X is followed by Y" drops the copula with the separator.
_SEPARATORS = [
    r",?\s+(?:is|are)\s+followed\s+by\s+",
    r",?\s+followed\s+by\s+",
    r",?\s+and\s+then\s+",
    r",?\s+then\s+",
    r"\s+while\s+",
    r"\s+as\s+",
    r"\s+over\s+",
    r"\s+before\s+",
    r"\s+after\s+",
    r"\s+along\s+with\s+",
    r"\s+accompanied\s+by\s+",
    r"\s+amid\s+",
    r"\s+during\s+",
    r";\s*",
    r",\s*",
]
_VERB_RE = re.compile(r"^(?:\w+ing|\w+[^s]s|\w+ed|is|are|occurs?)$")
_NOT_VERBS = {
    "bus",
    "gas",
    "glass",
    "grass",
    "bass",
    "chorus",
    "wings",
    "ceiling",
    "building",
    "evening",
    "something",
    "nothing",
    "thing",
    "things",
    "strings",
    "ring",
    "spring",
}


def _looks_like_clause(words: list[str]) -> bool:
    """Subject + verb: two or more words, and a non-initial word that looks like a finite verb or gerund."""
    return len(words) >= 2 and any(_VERB_RE.match(w) and w not in _NOT_VERBS for w in words[1:])


def _split_and(phrase: str) -> list[str]:
    """Split on " and " only between two clauses ("a horn honking and a siren wailing"), never inside a noun
    phrase ("an adult female and adult male speaking") or after a bare gerund ("spraying and a female screaming")."""
    parts = re.split(r"\s+and\s+", phrase)
    out = [parts[0]]
    for part in parts[1:]:
        left_words = out[-1].lower().split()
        right_words = part.lower().split()
        if _looks_like_clause(left_words) and _looks_like_clause(right_words):
            out.append(part)
        else:
            out[-1] = out[-1] + " and " + part
    return out


def split_caption(caption: str) -> list[str]:
    """Rule-based stand-in for the paper's constituent-tree phrase extraction (Appendix E, Table 5).

    1. split into clauses at temporal / concurrency connectives ("followed by", "then", "while", "as", "over",
       ...) and commas; 2. split a clause at " and " only when both sides are subject+verb clauses;
    3. a caption that stays one clause "<noun phrase> <verb>" is reduced to its noun phrase (Table 5: "An airplane
       engine runs" -> "An airplane engine"); 4. each phrase is stripped and capitalised, without final period."""
    text = re.sub(r"\s+", " ", caption.strip().rstrip("."))
    if not text:
        return []
    pieces = [text]
    for sep in _SEPARATORS:
        pieces = [p for piece in pieces for p in re.split(sep, piece, flags=re.IGNORECASE)]
    phrases = [q.strip(" ,;.") for p in pieces for q in _split_and(p.strip(" ,;."))]
    phrases = [re.sub(r"^(?:and|then)\s+", "", p, flags=re.IGNORECASE) for p in phrases if p]
    phrases = [p for p in phrases if p]
    if len(phrases) == 1:
        words = phrases[0].split()
        if (
            len(words) >= 3
            and words[-1].lower().endswith("s")
            and _VERB_RE.match(words[-1].lower())
            and words[-1].lower() not in _NOT_VERBS
        ):
            phrases = [" ".join(words[:-1])]
    return [p[0].upper() + p[1:] for p in phrases]
