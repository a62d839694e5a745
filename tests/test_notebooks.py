"""Every notebook runs under papermill in the smoke profile (outputs/notebooks-smoke/, later re-checked by nbval in
`make test`). Results and figures of these smoke runs go to outputs/, never over the committed quick-profile ones."""

import json
import os
from pathlib import Path

import pytest

from bimodal.experiments import notebooks, run_notebook
from bimodal.utils import REPO_ROOT

OUT = REPO_ROOT / "outputs" / "notebooks-smoke"
NOTEBOOKS = notebooks()


@pytest.fixture(autouse=True)
def _smoke_outputs(monkeypatch):
    # the kernel papermill starts inherits this environment
    monkeypatch.setenv("BIMODAL_RESULTS", str(REPO_ROOT / "outputs" / "results-smoke"))
    monkeypatch.setenv("BIMODAL_FIGURES", str(REPO_ROOT / "outputs" / "figures-smoke"))
    monkeypatch.setenv("MPLBACKEND", "Agg")


def test_notebooks_are_committed_clean_with_a_parameters_cell():
    assert len(NOTEBOOKS) >= 8, [p.name for p in NOTEBOOKS]
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        assert nb["metadata"]["kernelspec"]["name"] == "python3", path.name
        tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
        assert "profile" in "".join(tagged[0]["source"]), path.name
        assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), (
            f"{path.name}: commit notebooks without outputs"
        )


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_profile(path: Path):
    # A smoke cell takes seconds: 600 s means a hang. The failure then names the cell and shows the kernel's
    # stacks, which the kernel dumps every 240 s (BIMODAL_HANG_DUMP, read by bimodal/__init__.py).
    OUT.mkdir(parents=True, exist_ok=True)
    stacks = OUT / f"{path.stem}.stacks.txt"
    stacks.unlink(missing_ok=True)
    os.environ["BIMODAL_HANG_DUMP"] = f"240:{stacks}"
    try:
        report = run_notebook(path, OUT, {"profile": "smoke"}, cell_timeout=600)
    finally:
        del os.environ["BIMODAL_HANG_DUMP"]
    dumped = stacks.read_text()[-6000:] if stacks.exists() else ""
    assert report["status"] == "ok", (
        f"{path.name} failed at cell {report.get('cell')}: {report.get('error')}\n"
        f"{report.get('traceback', '')}\nkernel stacks:\n{dumped}"
    )
    executed = json.loads((OUT / path.name).read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
