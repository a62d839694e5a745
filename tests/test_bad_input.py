"""Bad input and damaged state (issue 21): outputs namespaced by profile, run folders that keep their word,
validation before work is spent, one-line expected errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bimodal import utils


# ---------------------------------------------------------------------------------------------------------------
# Namespaced outputs

@pytest.fixture()
def fake_repo(tmp_path, monkeypatch):
    """utils.REPO_ROOT pointed at an empty folder, the output variables unset."""
    for name in ("BIMODAL_RESULTS", "BIMODAL_FIGURES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(utils, "REPO_ROOT", tmp_path)
    return tmp_path


def test_results_and_figures_are_namespaced_by_profile(fake_repo):
    assert utils.results_root() == fake_repo / "results"
    assert utils.results_root("quick") == fake_repo / "results"
    assert utils.results_root("smoke") == fake_repo / "outputs" / "results-smoke"
    assert utils.figures_root("paper") == fake_repo / "outputs" / "figures-paper"
    assert utils.figures_root("smoke").is_dir()  # created on first use


def test_an_output_variable_naming_a_missing_folder_is_created(fake_repo, monkeypatch):
    target = fake_repo / "not" / "there"
    monkeypatch.setenv("BIMODAL_RESULTS", str(target))
    assert utils.results_root("smoke") == target and target.is_dir()


def test_a_smoke_table_never_touches_the_committed_results(fake_repo, monkeypatch):
    from bimodal import experiments as X

    monkeypatch.setenv("BIMODAL_RUNS", str(fake_repo / "runs"))
    committed = fake_repo / "results" / "table1.csv"
    committed.parent.mkdir()
    committed.write_text("quick rows\n")
    X.collect_table("table1", "smoke", [0], write=True)
    assert committed.read_text() == "quick rows\n"
    smoke = fake_repo / "outputs" / "results-smoke" / "table1.csv"
    assert set(__import__("pandas").read_csv(smoke)["profile"]) == {"smoke"}


def test_notebooks_write_results_and_figures_under_their_profile():
    # every results_root()/figures_root() call in a notebook names the notebook's profile parameter
    for path in sorted((utils.REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        code = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                       if c["cell_type"] == "code")
        assert "results_root()" not in code and "figures_root()" not in code, path.name
