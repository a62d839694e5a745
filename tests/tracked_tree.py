"""`make test` must leave the files git tracks (and the untracked, not ignored ones) as it found them: the Makefile
saves their state before the suite and checks it after (stdlib only, so it runs before the venv exists).

    python tests/tracked_tree.py save outputs/tree-before.json
    python tests/tracked_tree.py check outputs/tree-before.json   # exit 1, naming each file the run changed

Only paths that differ from HEAD are recorded (with a digest of their bytes), so a checkout with local edits passes
as long as the run itself changes nothing. Outside a git checkout (a source tarball) both steps say so and pass.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def tree_state(root: Path = ROOT) -> dict[str, str] | None:
    """Path -> sha256 of its bytes ("deleted" if gone) for every path `git status` reports; None outside git."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain=v1", "-z", "--untracked-files=all"],
            cwd=root,
            capture_output=True,
            check=True,
            timeout=120,
        ).stdout.decode()
    except (OSError, subprocess.SubprocessError):
        return None
    entries, paths = out.split("\0"), []
    i = 0
    while i < len(entries):
        entry = entries[i]
        if len(entry) > 3:
            paths.append(entry[3:])
            if entry[0] in "RC":  # a rename or copy: the next field is the old path
                i += 1
                paths.append(entries[i])
        i += 1
    state = {}
    for rel in paths:
        path = root / rel
        state[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "deleted"
    return state


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The paths whose state differs, each with what happened."""
    out = []
    for rel in sorted(set(before) | set(after)):
        was, now = before.get(rel, "as in HEAD"), after.get(rel, "as in HEAD")
        if was != now:
            what = "deleted" if now == "deleted" else "restored to HEAD" if now == "as in HEAD" else "written"
            out.append(f"{rel} ({what})")
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("save", "check"):
        print(__doc__, file=sys.stderr)
        return 2
    command, state_file = argv[0], Path(argv[1])
    state = tree_state()
    if state is None:
        print("tracked tree: not a git checkout, not checked")
        return 0
    if command == "save":
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps(state, indent=1, sort_keys=True))
        return 0
    changed = changes(json.loads(state_file.read_text()), state)
    if changed:
        print(
            "tracked tree: this run changed files it must leave alone (tests, timings and executed notebooks "
            "belong under outputs/):\n  " + "\n  ".join(changed),
            file=sys.stderr,
        )
        return 1
    print("tracked tree: unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
