"""Which implementation of the same mathematics runs: the fast path (default) or the eager reference.

Both compute the same function; they differ only in float rounding (checked in float64 by tests/test_fast_path.py).
The fast path reorders linear operations where that saves work on a CPU (e.g. the prompt gate before the final
bilinear up-sampling, BatchNorm folded into the frozen surrogate's convolutions, channels-last layouts, validation
BSS-Eval reusing each reference's factorisation). The reference is kept reachable so that benchmarks/train_step.py
can time both in one run and the tests can compare them:

    BIMODAL_REFERENCE_IMPL=1 bimodal train ...      # whole process on the reference path
    with bimodal.compute.reference_impl(): ...      # a block of code

Float rounding is not nothing over a training run: two runs whose steps differ by 1e-7 drift apart, step by step,
until their test SDRs differ by about the seed-to-seed spread. So everything that changes the rounding of a run —
this path, the torch version, the CPU instruction set oneDNN picks kernels for, the intra-op thread count (the order
of reductions) and the device — is part of the run's identity (:func:`execution`, hashed into the run id by
bimodal.train.run_id and recorded in summary.json). Runs that agree on all of it and on the config are
bit-identical on this CPU (tests/test_train.py trains one twice).
"""

from __future__ import annotations

import contextlib
import os

# Bumped whenever a change to the fast path changes its rounding: runs trained before then keep their own ids.
FAST_PATH_VERSION = 1

_reference = os.environ.get("BIMODAL_REFERENCE_IMPL", "").strip().lower() in ("1", "true", "yes")


def use_reference() -> bool:
    """True when the eager reference implementation is selected."""
    return _reference


@contextlib.contextmanager
def reference_impl(enabled: bool = True):
    """Run a block on the reference path (enabled=True) or the fast path (enabled=False)."""
    global _reference
    previous, _reference = _reference, bool(enabled)
    try:
        yield
    finally:
        _reference = previous


def name() -> str:
    return "reference" if _reference else "fast"


def execution(threads: int | None = None, device: str = "cpu") -> dict[str, str]:
    """What besides the config changes a run's numbers: {"path", "torch", "cpu", "threads", "device"}.
    `threads` = the intra-op thread count the run will use (None = torch's current setting)."""
    import torch

    return {
        "path": "reference" if _reference else f"fast-v{FAST_PATH_VERSION}",
        "torch": torch.__version__.split("+")[0],
        "cpu": torch.backends.cpu.get_cpu_capability(),
        "threads": str(int(threads or torch.get_num_threads())),
        "device": device,
    }
