"""tests/tracked_tree.py (the last step of `make test`) on a throw-away git repository."""

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from tracked_tree import changes, tree_state  # noqa: E402


def _git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_a_run_that_writes_a_tracked_or_new_file_is_caught_and_local_edits_are_not(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / ".gitignore").write_text("outputs/\n")
    (repo / "README.md").write_text("guide\n")
    (repo / "results.csv").write_text("a,b\n1,2\n")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "init")
    (repo / "README.md").write_text("guide, edited by hand before the run\n")
    before = tree_state(repo)
    (repo / "outputs").mkdir()
    (repo / "outputs" / "timings.csv").write_text("ignored by git\n")
    assert changes(before, tree_state(repo)) == []  # only a local edit from before the run, and ignored output
    (repo / "results.csv").write_text("a,b\n1,3\n")
    (repo / "new.md").write_text("written by the run\n")
    (repo / "README.md").write_text("guide, rewritten by the run\n")
    assert changes(before, tree_state(repo)) == ["README.md (written)", "new.md (written)", "results.csv (written)"]
    (tmp_path / "tarball").mkdir()
    assert tree_state(tmp_path / "tarball") is None  # not a git checkout: nothing to compare
