"""The `bimodal` command. Each sub-command lives in its module as ``cli(argv) -> int`` and is imported lazily, so
`bimodal versions` stays fast and one module's import error does not break the others."""
from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "versions": ("bimodal.cli", "versions_cli", "print package versions, git commit and device (for bug reports)"),
    "data": ("bimodal.datasets.cli", "cli", "build SynthMUSIC-21 / the embedding corpus, index real datasets"),
    "embedding": ("bimodal.surrogate.cli", "cli", "train / evaluate the offline CLAP-surrogate"),
    "separate": ("bimodal.model", "separate_cli", "separate a sound from an audio file with a text prompt"),
    "train": ("bimodal.train", "cli", "train one run (cached by config hash, resumes by default)"),
    "reproduce": ("bimodal.experiments.batch", "reproduce_cli", "run the notebooks with papermill and render tables"),
    "tables": ("bimodal.experiments.collect", "tables_cli", "train what a table needs and write results/<table>.csv"),
    "report": ("bimodal.experiments.report", "report_cli", "write docs/RESULTS.md and README.md's claims from results/"),
}


def versions_cli(argv: list[str]) -> int:
    from bimodal.utils import versions

    for key, value in versions().items():
        print(f"{key:>20}: {value}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: bimodal COMMAND [options]\n\ncommands:")
        for name, (_, _, text) in COMMANDS.items():
            print(f"  {name:<10} {text}")
        print("\n`bimodal COMMAND --help` for a command's options.")
        return 0
    if argv[0] not in COMMANDS:
        print(f"bimodal: unknown command {argv[0]!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module, func, _ = COMMANDS[argv[0]]
    return int(getattr(importlib.import_module(module), func)(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
