"""The `bimodal` command. Each sub-command lives in its module as ``cli(argv) -> int`` and is imported lazily, so
`bimodal versions` stays fast and one module's import error does not break the others."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "versions": ("bimodal.cli", "versions_cli", "print package versions, git commit and device (for bug reports)"),
    "data": ("bimodal.datasets.cli", "cli", "build SynthMUSIC-21 / the embedding corpus, index real datasets"),
    "embedding": ("bimodal.surrogate.cli", "cli", "train / evaluate the offline CLAP-surrogate"),
    "separate": ("bimodal.separate", "separate_cli", "separate a sound from an audio file with a text prompt"),
    "train": ("bimodal.train", "cli", "train one run (cached by config hash, resumes by default)"),
    "reproduce": ("bimodal.experiments.batch", "reproduce_cli", "run the notebooks with papermill and render tables"),
    "tables": ("bimodal.experiments.collect", "tables_cli", "train what a table needs and write results/<table>.csv"),
    "report": (
        "bimodal.experiments.report",
        "report_cli",
        "write docs/RESULTS.md and README.md's claims from results/",
    ),
}


def versions_cli(argv: list[str]) -> int:
    import argparse

    argparse.ArgumentParser(prog="bimodal versions", description=COMMANDS["versions"][2]).parse_args(argv)
    from bimodal.utils import versions

    for key, value in versions().items():
        print(f"{key:>20}: {value}")
    return 0


# The project's expected errors (module, class): bad input or damaged state the message fully explains, printed as
# one line without a traceback. ConfigError (a value, field or path that does not fit) is a usage error: exit 2.
EXPECTED_ERRORS = [
    ("bimodal.config", "ConfigError"),
    ("bimodal.model", "CheckpointError"),
    ("bimodal.datasets.manifest", "DatasetNotBuilt"),
    ("bimodal.audio", "AudioError"),
    ("bimodal.utils", "NotWritable"),
]
USAGE_ERRORS = ("ConfigError",)


def _expected(exc: BaseException) -> bool:
    """Whether `exc` is one of EXPECTED_ERRORS or a plain OSError (a file that is missing or cannot be written;
    its message names the file). Looked up in sys.modules: a module that was never imported raised nothing."""
    types = [
        getattr(sys.modules[m], name)
        for m, name in EXPECTED_ERRORS
        if m in sys.modules and hasattr(sys.modules[m], name)
    ]
    return isinstance(exc, (OSError, *types))


def main(argv: list[str] | None = None) -> int:
    """Run one sub-command. An expected error (see _expected) prints `bimodal <command>: <message>` on stderr and
    exits 2 (usage) or 1; `--debug` anywhere on the command line, or BIMODAL_DEBUG=1, shows its traceback instead."""
    import os

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("BIMODAL_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    try:
        return _dispatch(argv)
    except KeyboardInterrupt:
        if debug:
            raise
        print("bimodal: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug or not _expected(exc):
            raise
        command = argv[0] if argv else ""
        message = " ".join(str(exc).split()) or type(exc).__name__  # one line
        print(f"bimodal {command}: {message}", file=sys.stderr)
        return 2 if type(exc).__name__ in USAGE_ERRORS else 1


def _dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: bimodal COMMAND [options]\n\ncommands:")
        for name, (_, _, text) in COMMANDS.items():
            print(f"  {name:<10} {text}")
        print(
            "\n`bimodal COMMAND --help` for a command's options; `--debug` (or BIMODAL_DEBUG=1) shows the traceback "
            "of an expected error."
        )
        return 0
    if argv[0] not in COMMANDS:
        print(f"bimodal: unknown command {argv[0]!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module, func, _ = COMMANDS[argv[0]]
    return int(getattr(importlib.import_module(module), func)(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
