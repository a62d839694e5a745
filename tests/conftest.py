import os

# One torch thread per process in the tests (before torch is imported; the notebook kernels and subprocesses inherit
# it). The smoke models are tiny: a second thread gains nothing, and when another process holds a core (a loaded CI
# runner) OpenMP's spinning barriers made a smoke training run 4x slower here and the suite miss CI's time limit.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402


def pytest_report_header(config):
    # what CI logs need to explain a slow run: the CPUs torch sees vs the ones this process may use
    from bimodal.utils import available_cpus

    return (
        f"bimodal: os.cpu_count()={os.cpu_count()}, available_cpus()={available_cpus()}, "
        f"torch threads={torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds (still part of make test)")


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield


def fit_fixed_batch(objective, separator, batch, steps: int = 25, lr: float = 3e-3) -> tuple[list[float], dict]:
    """Adam on one fixed batch for `steps` steps: the logged total loss of every step, and the last step's log
    (the tests that a method learns assert that the total falls)."""
    opt = torch.optim.Adam(separator.parameters(), lr=lr)
    totals, logged = [], {}
    for _ in range(steps):
        loss, logged = objective(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        totals.append(logged["total"])
    return totals, logged


def smoke_environment(root):
    """A fresh smoke SynthMUSIC-21 under root/data and an empty runs folder, set through BIMODAL_DATA/BIMODAL_RUNS
    for the duration of a module (a generator for a fixture to yield from); the variables are restored after."""
    from bimodal.config import get_config
    from bimodal.datasets import build_synthmusic21

    old = {k: os.environ.get(k) for k in ("BIMODAL_DATA", "BIMODAL_RUNS")}
    os.environ["BIMODAL_DATA"] = str(root / "data")
    os.environ["BIMODAL_RUNS"] = str(root / "runs")
    try:
        build_synthmusic21(get_config("smoke").data, verbose=False)  # loading never renders: the explicit build step
        yield root
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
