"""README.md is a user's guide: short, without history (dates and commit hashes go to CHANGELOG.md), and its
generated sections sit between the markers `bimodal report` rewrites."""

import re

from bimodal.utils import REPO_ROOT

README = REPO_ROOT / "README.md"


def history_in(text: str) -> list[str]:
    """Dates (2026-12-02) and commit-hash-like words (7-40 hex digits with a digit and a letter) in a text."""
    dates = re.findall(r"\b20\d\d-\d\d-\d\d\b", text)
    hashes = [w for w in re.findall(r"\b[0-9a-f]{7,40}\b", text) if re.search(r"\d", w) and re.search(r"[a-f]", w)]
    return dates + hashes


def test_history_in_finds_dates_and_hashes():
    assert history_in("since 2026-12-02 (commit 0bcfc4a), n_fft 1022, 1e-3, decade") == ["2026-12-02", "0bcfc4a"]


def test_readme_is_a_short_guide_without_history():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    assert history_in(text) == []
    for tag in ("claims", "choices"):  # the sections bimodal report writes
        assert text.count(f"<!-- {tag}:start -->") == 1 and text.count(f"<!-- {tag}:end -->") == 1
