"""The experiment registry: shared runs are one config, tables collect what the runs measured (here: hand-written
summaries in a temporary runs folder), and the batch run list tells trained from reused runs."""

import json
import math
import os
import time

import pandas as pd
import pytest

from bimodal import experiments as X
from bimodal.train import execution_of, run_dir_for


@pytest.fixture()
def roots(tmp_path, monkeypatch):
    monkeypatch.setenv("BIMODAL_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("BIMODAL_RESULTS", str(tmp_path / "results"))
    return tmp_path


def _cell(table: str, key: str) -> X.Cell:
    return next(c for c in X.TABLES[table].cells if c.key == key)


def _fake_summary(cfg, sdr: float, sir: float = 1.0, fingerprint: str | None = None) -> str:
    """A finished run as train_run leaves it, with made-up metrics (the registry only reads summary.json)."""
    run_dir = run_dir_for(cfg)
    run_dir.mkdir(parents=True)
    stat = lambda v: {"mean": v, "median": v, "std": 0.0, "n": 10, "n_skipped": 0}  # noqa: E731
    summary = {
        "finished": True,
        "run_dir": str(run_dir),
        "config_hash": cfg.hash(),
        "execution": execution_of(cfg),
        "method": cfg.train.method,
        "seed": cfg.train.seed,
        "train_seconds": 100.0 + cfg.train.seed,
        "test2": {"sdr": stat(sdr), "sir": stat(sir)},
    }
    if fingerprint is not None:
        summary["embedding_fingerprint"] = fingerprint
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir.name


def test_shared_cells_are_one_run():
    # the L_URL-only row of Table 8 is Table 1's CLAPSep* 2-source cell; (c) of the three-way result is Table 1's
    # proposed 2-source cell: one config hash each, so they train once
    pairs = [
        (("table8", "url/k2"), ("table1", "mix_and_separate/k2")),
        (("table8", "url_cnt_crl/k3"), ("figure1", "proposed/k3")),
        (("three_way", "proposed"), ("table1", "proposed/k2")),
        (("three_way", "proposed_component"), ("diagnosis", "component_input")),
        (("defaults", "input_component/val2"), ("diagnosis", "component_input")),
        (("defaults", "input_mom/test2"), ("three_way", "proposed")),
        (("teachers", "surrogate_1sf_600"), ("three_way", "proposed")),
        (("teachers", "surrogate"), ("diagnosis", "teacher_surrogate")),
        (("defaults", "teacher_surrogate/val2"), ("diagnosis", "teacher_surrogate")),
        (("defaults", "teacher_1sf_600/test2"), ("teachers", "surrogate_1sf_600")),
        (("cnt_floor", "eqs/k3/val2"), ("cnt_floor", "eqs/k3/test2")),
        (("table13", "clapsep_star/music/without"), ("table1", "supervised/single")),
        (("table13", "bertsep_star/music/with"), ("table13", "clapsep_star/music/with")),
        (("table13", "clipsep_text/music/without"), ("table1", "clipsep_text/single")),
        (("table7", "sa_ca/k2"), ("table1", "proposed/k2")),  # the quick U-Net is the SA + CA variant
        (("table7", "vanilla/single"), ("table1", "clipsep_text/single")),
        (("table15", "template"), ("table1", "proposed/k2")),
        (("table15", "learnable"), ("table15", "len32/clips5")),
    ]
    for a, b in pairs:
        ca, cb = X.cell_configs(_cell(*a), "quick", [0])[0], X.cell_configs(_cell(*b), "quick", [0])[0]
        assert ca.hash() == cb.hash()
    planned = X.planned_runs(["table1", "table8", "three_way", "teachers"], "quick", [0], "all")
    assert len({c.hash() for c in planned}) == len(planned)


def test_collect_table_reports_mean_std_and_why_a_cell_is_empty(roots):
    table = "three_way"
    sup, mas = _cell(table, "supervised"), _cell(table, "mix_and_separate")
    for seed, sdr in ((0, 7.0), (1, 8.0), (2, 9.0)):
        _fake_summary(X.cell_configs(sup, "quick", [seed])[0], sdr)
    _fake_summary(X.cell_configs(mas, "quick", [0])[0], 5.0)
    df = X.collect_table(table, "quick", [0, 1, 2], "all").set_index("row")
    assert df.loc["(a) supervised", "here_mean"] == pytest.approx(8.0)
    assert df.loc["(a) supervised", "here_std"] == pytest.approx(1.0)  # sample std of 7, 8, 9
    assert df.loc["(a) supervised", "n_seeds"] == 3 and df.loc["(a) supervised", "status"] == "ok"
    assert df.loc["(b) mix-and-separate", "status"] == "partial: 1 of 3 seeds"
    assert df.loc["(c) proposed", "status"] == "not run: not trained yet"
    assert (roots / "results" / "three_way.csv").exists() and (roots / "results" / "three_way.md").exists()
    metrics = X.collect_metrics(table, "quick", [0, 1, 2], "all")
    sir = metrics.query("row == '(a) supervised' and metric == 'sir' and over_mixtures == 'mean'")
    assert len(sir) == 1 and sir["n_seeds"].iloc[0] == 3


def test_collected_runs_outlive_their_run_dirs(roots):
    # what a collection read from runs/ is kept in results/runs: with runs/ gone, the same table comes back
    cell = _cell("table1", "supervised/single")
    for seed, sdr in ((0, 7.0), (1, 8.0), (2, 9.0)):
        _fake_summary(X.cell_configs(cell, "quick", [0])[seed], sdr, sir=sdr - 1)
    s0 = run_dir_for(X.cell_configs(cell, "quick", [0])[0])
    (s0 / "epochs.csv").write_text("epoch,seconds,train_url,val_sdr_mean,val_sdr_std\n0,10.0,0.5,1.0,2.0\n")
    first = X.collect_table("table1", "quick", [0]).set_index("key")
    archived = sorted((roots / "results" / "runs").glob("*.json"))
    assert len(archived) == 3
    kept = json.loads((roots / "results" / "runs" / f"{s0.name}.json").read_text())
    assert kept["epochs"] == [{"epoch": 0, "seconds": 10.0, "train_url": 0.5, "val_sdr_mean": 1.0}]
    record = json.loads(archived[0].read_text())
    assert (
        record["run_dir"].startswith("runs/quick-supervised-") and record["config"]["train"]["method"] == "supervised"
    )
    metrics_before = (roots / "results" / "table1_metrics.csv").read_text()
    for run in (roots / "runs").iterdir():
        (run / "summary.json").unlink()
    again = X.collect_table("table1", "quick", [0]).set_index("key")
    for col in ("here_mean", "here_std", "n_seeds", "run_ids", "status"):
        assert again.loc["supervised/single", col] == first.loc["supervised/single", col]
    assert again.loc["supervised/single", "here_mean"] == pytest.approx(8.0)
    assert (roots / "results" / "table1_metrics.csv").read_text() == metrics_before


def test_recollection_keeps_committed_cells_and_merges_new_seeds(roots):
    # tables written before results/runs existed, on a machine whose runs/ is gone: a cell of one run is recovered
    # exactly (its mean is the run's value) and merged with seeds trained since; a cell of three runs none of
    # which can be read is kept as written; a row whose run ids are not this cell's is not
    k3, k2, k4 = (_cell("figure1", f"proposed/k{k}") for k in (3, 2, 4))
    _fake_summary(X.cell_configs(k3, "quick", [0])[0], 3.0, sir=10.0)
    for seed, sdr in ((0, 5.0), (1, 6.0), (2, 7.0)):
        _fake_summary(X.cell_configs(k2, "quick", [0])[seed], sdr)
    _fake_summary(X.cell_configs(k4, "quick", [0])[0], 2.0)
    X.collect_table("figure1", "quick", [0])
    results = roots / "results"
    for path in (results / "runs").glob("*.json"):
        path.unlink()  # the legacy state: tables without records
    for run in (roots / "runs").iterdir():
        (run / "summary.json").unlink()
    table = (results / "figure1.csv").read_text()
    k4_id = run_dir_for(X.cell_configs(k4, "quick", [0])[0]).name
    (results / "figure1.csv").write_text(table.replace(k4_id, "quick-proposed-000000000000"))
    _fake_summary(X.cell_configs(k3, "quick", [0])[1], 5.0, sir=12.0)
    _fake_summary(X.cell_configs(k3, "quick", [0])[2], 4.0, sir=11.0)
    df = X.collect_table("figure1", "quick", [0]).set_index("key")
    assert df.loc["proposed/k3", "n_seeds"] == 3 and df.loc["proposed/k3", "status"] == "ok"
    assert df.loc["proposed/k3", "here_mean"] == pytest.approx(4.0)  # (3 + 5 + 4) / 3
    assert df.loc["proposed/k2", "n_seeds"] == 3 and df.loc["proposed/k2", "here_mean"] == pytest.approx(6.0)
    assert df.loc["proposed/k4", "status"] == "not run: not trained yet"
    k3_s0 = run_dir_for(X.cell_configs(k3, "quick", [0])[0]).name
    record = json.loads((results / "runs" / f"{k3_s0}.json").read_text())
    assert record["reconstructed_from"] == ["results/figure1.csv", "results/figure1_metrics.csv"]
    metrics = X.collect_metrics("figure1", "quick", [0]).set_index(["key", "metric", "over_mixtures"])
    assert metrics.loc[("proposed/k3", "sir", "mean"), "mean_over_seeds"] == pytest.approx(11.0)
    written = pd.read_csv(results / "figure1_metrics.csv").set_index(["key", "metric", "over_mixtures"])
    assert written.loc[("proposed/k2", "sdr", "mean"), "n_seeds"] == 3  # kept with its cell


def test_core_batches_report_runs_outside_their_cells_only_if_trained(roots):
    table = "diagnosis"
    outside = [c for c in X.TABLES[table].cells if not c.core]
    assert outside, "the diagnosis table declares variants for cells='all'"
    _fake_summary(X.cell_configs(outside[0], "quick", [0])[0], 4.0)
    df = X.collect_table(table, "quick", [0], "core", write=False).set_index("row")
    assert df.loc[outside[0].row, "here_mean"] == pytest.approx(4.0)
    assert "outside the core cells" in df.loc[outside[0].row, "status"]
    assert df.loc[outside[1].row, "status"].startswith("not run: outside the core cells")
    not_runnable = next(c for c in X.TABLES["table1"].cells if c.overrides is None)
    t1 = X.collect_table("table1", "quick", [0], "core", write=False).set_index(["row", "column"])
    assert t1.loc[(not_runnable.row, not_runnable.column), "status"] == f"not run: {not_runnable.reason}"


def test_batch_runs_tells_trained_from_reused(roots):
    cells = [_cell("three_way", "supervised"), _cell("three_way", "mix_and_separate")]
    old = _fake_summary(X.cell_configs(cells[0], "quick", [0])[0], 7.0)
    past = time.time() - 3600
    os.utime(roots / "runs" / old / "summary.json", (past, past))
    since = time.time() - 60
    new = _fake_summary(X.cell_configs(cells[1], "quick", [0])[0], 6.0)
    X.collect_table("three_way", "quick", [0], "all")
    runs = X.batch_runs("quick", since=since).set_index("run")
    assert not runs.loc[old, "trained_in_batch"] and runs.loc[new, "trained_in_batch"]
    assert runs.loc[old, "train_seconds"] == pytest.approx(100.0)
    assert (roots / "results" / "quick_batch_runs.csv").exists()


def test_tables_name_the_weights_that_scored_l_cnt(roots):
    # a results file outlives a change of the default surrogate: each row says which weights scored L_CNT
    from bimodal.embedding import ASSET
    from bimodal.utils import file_sha256

    table = "diagnosis"
    proposed = _cell(table, "proposed")
    previous = _cell(table, "teacher_surrogate")
    no_crl = _cell(table, "no_crl")
    mas = _cell(table, "mix_and_separate")
    default_fp, previous_fp = file_sha256(ASSET)[:12], file_sha256(ASSET.parent / "surrogate.pt")[:12]
    assert default_fp != previous_fp
    _fake_summary(X.cell_configs(proposed, "quick", [0])[0], 6.0, fingerprint=default_fp)
    _fake_summary(X.cell_configs(previous, "quick", [0])[0], 5.0, fingerprint=previous_fp)
    _fake_summary(X.cell_configs(no_crl, "quick", [0])[0], 5.0)  # a summary from before fingerprints
    _fake_summary(X.cell_configs(mas, "quick", [0])[0], 5.5)  # no L_CNT: no fingerprint needed
    df = X.collect_table(table, "quick", [0], "all").set_index("row")
    assert df.loc[proposed.row, "embedding"] == f"surrogate_1sf_600 ({default_fp}), the default"
    assert df.loc[previous.row, "embedding"] == f"surrogate ({previous_fp})"
    assert df.loc[no_crl.row, "embedding"] == "not recorded (trained by older code)"
    assert df.loc[mas.row, "embedding"] == ""
    md = (roots / "results" / "diagnosis.md").read_text()
    assert f"surrogate ({previous_fp}): {previous.row}" in md
    assert f"surrogate_1sf_600 ({default_fp}), the default: {proposed.row}" in md
    assert X.embedding_label("0123456789ab") == "weights 0123456789ab (not a shipped surrogate)"


def test_every_cell_has_a_unique_key_and_the_headline_trains_three_seeds():
    for table in X.TABLES.values():
        keys = [c.key for c in table.cells]
        assert all(keys) and len(set(keys)) == len(keys), table.id
    for k in (2, 3, 4):  # the paper's main claim: K = 2, 3, 4 in the default batch, 3 seeds each
        for key in (f"proposed/k{k}", f"mix_and_separate/k{k}"):
            cell = _cell("figure1", key)
            assert cell.core and cell.seeds == (0, 1, 2)
            assert {c.train.seed for c in X.cell_configs(cell, "quick", [0])} == {0, 1, 2}
            assert X.cell_configs(cell, "quick", [0])[0].data.k_sources == k
    planned = X.planned_runs(["figure1"], "quick", [0], "core")
    assert sum(c.train.method == "proposed" for c in planned) == 9  # 3 K x 3 seeds
    assert X.cell_configs(_cell("table8", "cnt/k3"), "quick", [0, 1])[0].train.seed == 0  # undeclared: caller's


def test_defaults_table_reports_validation_beside_test_and_claims_check_the_choice(roots):
    from bimodal.experiments import claims

    mom, comp = _cell("defaults", "input_mom/val2"), _cell("defaults", "input_component/val2")
    assert mom.split == "val2" and _cell("defaults", "input_mom/test2").split == "test2"
    assert X.cell_configs(mom, "quick", [0])[0].train.single_source_input == "mom"  # the config default
    assert X.cell_configs(comp, "quick", [0])[0].train.single_source_input == "component"
    for cell, vals in ((mom, (5.0, 6.0, 7.0)), (comp, (6.5, 7.0, 7.5))):  # component better on validation,
        for seed, v in enumerate(vals):  # mom better on test: validation must decide
            cfg = X.cell_configs(cell, "quick", [seed])[seed]
            _fake_summary(cfg, sdr=9.0 - (cell is comp) * 3)
            path = run_dir_for(cfg) / "summary.json"
            summary = json.loads(path.read_text())
            summary["best_val_sdr"] = v
            path.write_text(json.dumps(summary))
    df = X.collect_table("defaults", "quick", [0]).set_index("key")
    assert df.loc["input_mom/val2", "here_mean"] == pytest.approx(6.0)
    assert df.loc["input_mom/val2", "here_std"] == pytest.approx(1.0)
    assert df.loc["input_component/val2", "here_mean"] == pytest.approx(7.0)
    assert df.loc["input_mom/test2", "here_mean"] == pytest.approx(9.0)
    assert df.loc["input_mom/val2", "n_seeds"] == 3 and df.loc["input_mom/val2", "status"] == "ok"
    assert df.loc["teacher_1sf_600/val2", "status"] == "ok"  # the default teacher: the runs of the mom row
    assert df.loc["teacher_surrogate/val2", "status"].startswith("not run")
    verdicts = {c["claim"]: c["holds"] for c in claims.default_choices(roots / "results")}
    input_claim = next(v for c, v in verdicts.items() if "single_source_input" in c)
    assert input_claim.startswith("**no**") and "component" in input_claim
    assert next(v for c, v in verdicts.items() if "checkpoint" in c) == "not run"


def test_claims_compare_the_collected_cells(roots):
    from bimodal.experiments import claims

    fig = X.TABLES["figure1"]
    for key, values in (
        ("proposed/k2", (7.0, 7.2, 7.4)),
        ("mix_and_separate/k2", (5.0, 5.1, 5.2)),
        ("proposed/k3", (4.0, 4.1, 4.2)),
        ("mix_and_separate/k3", (5.0, 5.1, 5.2)),
    ):
        cell = next(c for c in fig.cells if c.key == key)
        for seed, v in enumerate(values):
            _fake_summary(X.cell_configs(cell, "quick", [0])[seed], v)
    X.collect_table("figure1", "quick", [0])
    rows = {c["claim"]: c for c in claims.claims(roots / "results")}
    k2 = rows["proposed > mix-and-separate, K = 2 (Figure 1)"]
    assert k2["holds"] == "yes" and k2["apart"] == "yes" and k2["paper"] == "7.9 vs 4.6"
    k3 = rows["proposed > mix-and-separate, K = 3 (Figure 1)"]
    assert k3["holds"] == "**no**" and k3["apart"] == "no; the opposite is"  # 4.1 ± 0.1 vs 5.1 ± 0.1
    assert rows["proposed > mix-and-separate, K = 4 (Figure 1)"]["holds"] == "not run"
    assert "not run" in claims.render(roots / "results")


def test_batch_cost_counts_the_planned_runs_and_prices_them_by_measured_runs(roots):
    cell = _cell("figure1", "mix_and_separate/k3")
    for seed, seconds in ((0, 100.0), (1, 300.0), (2, 200.0)):
        cfg = X.cell_configs(cell, "quick", [0])[seed]
        _fake_summary(cfg, 5.0)
        path = run_dir_for(cfg) / "summary.json"
        summary = json.loads(path.read_text())
        summary["train_seconds"] = seconds
        path.write_text(json.dumps(summary))
        (run_dir_for(cfg) / "config.json").write_text(json.dumps(cfg.to_dict()))
    df = X.batch_cost("quick", [0]).set_index(["method", "k_sources"])
    planned = X.planned_runs(list(X.TABLES), "quick", [0])
    assert df["planned_runs"].sum() == len(planned)
    row = df.loc[("mix_and_separate", 3)]
    assert row["planned_runs"] == 3 and row["measured_runs"] == 3 and row["median_train_seconds"] == 200.0
    assert row["estimate_cpu_hours"] == pytest.approx(3 * 200.0 / 3600, abs=0.01)
    assert math.isnan(df.loc[("proposed", 4), "median_train_seconds"])  # nothing measured: no price


def test_report_writes_every_table_and_only_the_readme_section(roots):
    from bimodal.embedding import ASSET, shipped_surrogates
    from bimodal.experiments.report import write_report
    from bimodal.utils import file_sha256

    sup = next(c for c in X.TABLES["three_way"].cells if c.overrides and c.paper is not None)
    for seed, sdr in ((0, 7.0), (1, 9.0)):
        _fake_summary(X.cell_configs(sup, "quick", [seed])[0], sdr)
    X.collect_table("three_way", "quick", [0, 1], "all")
    res = roots / "results"
    (res / "table16_proxy.csv").write_text("model,Correct (%),n\nproposed,90.0,10\n")
    (res / "timings.csv").write_text("what,command,seconds,machine,date\ntest suite,make test,431.0,2-core CPU,x\n")
    (res / "quick_batch_cost_core.csv").write_text("method,k_sources,planned_runs\nproposed,2,3\n")
    readme = roots / "README.md"
    readme.write_text(
        "# guide\n\nby hand\n<!-- claims:start -->\nstale text\n<!-- claims:end -->\nafter, by hand\n"
        "<!-- choices:start -->\n<!-- choices:end -->\n"
    )
    docs, index = roots / "docs" / "RESULTS.md", roots / "INDEX.md"
    assert write_report(readme, docs, index) == [readme, docs, index]
    text = readme.read_text()
    assert text.startswith("# guide\n\nby hand\n<!-- claims:start -->\n| the paper's claim |")
    assert "<!-- claims:end -->\nafter, by hand\n<!-- choices:start -->\n| topic |" in text and "stale text" not in text
    results = docs.read_text()
    assert f"| {sup.row} | {sup.paper:.1f} | 8.0 ± 1.4 (2) |" in results  # paper beside here, mean ± sample std (n)
    assert "| proposed | 90.0 | 10 |" in results  # a CSV-only table, rendered
    assert "| test suite | `make test` | 431 | 2-core CPU | x |" in results
    timings = results[results.index("## Timings") :]  # the batch cost is a timing, not a table of its own
    assert "### Estimated training cost of the quick batch, cells='core'" in timings
    assert "| proposed | 2 | 3 |" in timings and results.count("| proposed | 2 | 3 |") == 1
    assert results.index("## The paper's headline claims") < results.index(f"### {X.TABLES['three_way'].title}")
    listed = index.read_text()
    for name in shipped_surrogates():
        assert f"`{file_sha256(ASSET.parent / f'{name}.pt')}`" in listed
    assert write_report(readme, docs, index) == []  # nothing changed: nothing rewritten
    readme.write_text("# a guide without the markers\n")
    with pytest.raises(ValueError, match=r"README.md: the generated section needs the markers <!-- claims:start -->"):
        write_report(readme, docs, index)


def test_choices_table_reads_the_defaults_from_the_config():
    from bimodal.experiments.report import choices_markdown

    def here(table: str, topic: str) -> tuple[str, str]:  # (this repository's choice, the config-field cell)
        cells = next(line for line in table.splitlines() if line.startswith(f"| {topic} |")).split(" | ")
        return cells[3], cells[4].rstrip(" |")

    for value, said in (("component", "each component mixture"), ("mom", "the mixture of mixtures")):
        table = choices_markdown("paper", "quick", {"train.single_source_input": value})
        choice, field = here(table, "single-source branch input")
        assert choice == said and field.startswith(f"`train.single_source_input` (`{value}` / ")
    table = choices_markdown("paper", "quick", {"train.alpha": 0.5, "train.gamma": 5.0, "model.n_fft": 766})
    assert here(table, "loss weights (eq. 6)")[0] == "α 0.5, β 5, γ 5"
    assert here(table, "STFT")[0] == "n_fft 766, hop 256"
    assert here(table, "model selection") == ("best validation SDR; the test set is read once, at the end", "—")
    # the quick profile's sizes differ from the paper's; with the same n_fft only the backend is left
    from bimodal.embedding import ASSET

    assert table.endswith(f"The quick profile differs in: joint embedding: the shipped CLAP-surrogate `{ASSET.stem}`.")
    table = choices_markdown("paper", "quick", {"model.n_fft": 766, "embedding.checkpoint": "surrogate"})
    assert table.endswith("joint embedding: the shipped CLAP-surrogate `surrogate`.")  # the configured one


def test_table7_parameter_counts_come_from_the_models(roots):
    from bimodal.config import get_config
    from bimodal.experiments.architecture import table7_parameter_counts, write_table7_parameter_counts
    from bimodal.model import Separator, count_parameters

    df = table7_parameter_counts("smoke").set_index("variant")
    assert len(df) == 10 and list(df.columns[-2:]) == ["ours_quick_size_params", "ours_smoke_size_params"]
    # the quick-size SA + CA row is the quick profile's own U-Net (the separator's masker)
    quick = Separator(get_config("quick").model, 384)
    assert df.loc["sa_ca", "ours_quick_size_params"] == count_parameters(quick.masker)
    # at the paper size the single-block variants match the paper's column to 0.1 M; doubling a block adds to it
    for variant in ("ca", "sa", "res", "sa_ca"):
        assert abs(df.loc[variant, "ours_paper_size_params_M"] - df.loc[variant, "paper_params_M"]) < 0.1
    assert df.loc["res2", "ours_paper_size_params_M"] > df.loc["res", "ours_paper_size_params_M"] > 30
    path = write_table7_parameter_counts("smoke")
    assert path.parent == roots / "results" and path.name == "table7_params.csv"


def test_table13_adds_l_cnt_to_supervised_runs_only_in_the_with_columns():
    cells = {c.key: c for c in X.TABLES["table13"].cells}
    for key, cell in cells.items():
        if key.split("/")[1] == "vggsound":
            assert cell.overrides is None and "VGGSound" in cell.reason
            continue
        cfg = X.cell_configs(cell, "smoke", [0])[0]
        assert cfg.train.method == "supervised" and cfg.data.k_sources == 1
        assert (cfg.train.supervised_cnt_weight > 0) == key.endswith("/with")


def test_headline_runs_lists_the_default_configs_with_best_epoch_and_cost(roots):
    from bimodal.config import get_config
    from bimodal.experiments.report import headline_runs
    from bimodal.train import embedding_fingerprint

    runs = roots / "results" / "runs"
    runs.mkdir(parents=True)

    def record(name, over, seconds, best_epoch):
        cfg = get_config("quick", over)
        rec = {
            "run_dir": f"runs/{name}",
            "config_hash": cfg.hash(),
            "embedding_fingerprint": embedding_fingerprint(cfg),
            "config": cfg.to_dict(),
            "seed": cfg.train.seed,
            "best_epoch": best_epoch,
            "train_seconds": seconds,
            "execution": {"threads": "1"},
            "epochs": [{"epoch": 0, "train_cnt": 3.0}, {"epoch": 1, "train_cnt": 1.5}],
        }
        (runs / f"{name}.json").write_text(json.dumps(rec))

    for seed, seconds in ((0, 2000.0), (1, 2200.0), (2, 1900.0)):
        record(
            f"quick-proposed-k3s{seed}",
            {"train.method": "proposed", "data.k_sources": 3, "train.seed": seed},
            seconds,
            11,
        )
    record("quick-mix_and_separate-k3", {"train.method": "mix_and_separate", "data.k_sources": 3}, 500.0, 6)
    record("quick-proposed-alpha", {"train.method": "proposed", "data.k_sources": 3, "train.alpha": 0.01}, 9.0, 0)
    teacher = {"train.method": "proposed", "data.k_sources": 3, "embedding.checkpoint": "surrogate"}
    record("quick-proposed-teacher", teacher, 9.0, 0)  # the same config hash: only the weights differ
    (runs / "quick-proposed-old.json").write_text(json.dumps({"run_dir": "runs/x", "reconstructed_from": ["t.csv"]}))
    df = headline_runs(roots / "results").set_index("method")
    assert list(df.index) == ["mix_and_separate", "proposed"]  # the α and teacher variants, the recovered record: out
    epochs = get_config("quick").train.epochs
    assert df.loc["proposed", "seeds"] == "0 1 2"
    assert df.loc["proposed", "best validation epoch (of the epochs trained)"] == " ".join([f"12/{epochs}"] * 3)
    assert df.loc["proposed", "median train seconds"] == 2000.0
    assert df.loc["proposed", "× mix-and-separate"] == "4.0"
    assert df.loc["proposed", "training L_CNT, last epoch"] == "1.50 1.50 1.50"
    assert df.loc["mix_and_separate", "training L_CNT, last epoch"] == ""  # no L_CNT in that objective


def test_runs_of_another_execution_are_read_and_named(roots, monkeypatch):
    # a run recorded on another machine (another CPU instruction set, thread count) is a run of the same config:
    # collected from results/runs with its execution named under the table, never taken for this machine's
    import torch

    cell = _cell("table1", "supervised/single")
    cfg = X.cell_configs(cell, "quick", [0])[0]
    _fake_summary(cfg, 7.0)
    X.collect_table("table1", "quick", [0])  # archives it, under this process's thread count
    for run in (roots / "runs").iterdir():
        (run / "summary.json").unlink()
    threads = torch.get_num_threads()
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads + 1)
    assert run_dir_for(cfg).name not in {p.stem for p in (roots / "results" / "runs").glob("*.json")}
    summary, source = X.collect._load_summary(cfg)
    assert source == "archive" and summary["execution"]["threads"] == str(threads)
    df = X.collect_table("table1", "quick", [0]).set_index("key")
    assert df.loc["supervised/single", "here_mean"] == pytest.approx(7.0)
    label = X.collect.execution_label(summary["execution"])
    assert df.loc["supervised/single", "execution"] == label and f"{threads} thread" in label
    assert f"Trained on: {label}, every run." in (roots / "results" / "table1.md").read_text()
    # a config never trained is still not run, whatever the archive holds
    other = X.cell_configs(_cell("table1", "mix_and_separate/k2"), "quick", [0])[0]
    assert X.collect._load_summary(other) == (None, "")


def test_cnt_plot_draws_the_seed_mean_curves_beside_the_clean_reference(tmp_path):
    from bimodal import plots

    def rec(seed, cnt, val):
        return {
            "seed": seed,
            "epochs": [{"epoch": e, "train_cnt": c, "val_sdr_mean": v} for e, (c, v) in enumerate(zip(cnt, val))],
        }

    groups = {
        ("proposed", 3, None): [rec(0, [4.0, 2.0], [1.0, 2.0]), rec(1, [6.0, 1.0], [3.0, 2.0])],
        ("mix_and_separate", 3, None): [rec(0, [float("nan")] * 2, [2.5, 3.5])],
    }
    reference = pd.DataFrame({"K": [3], "L_CNT clean": [1.8]})
    fig = plots.cnt_against_reference(groups, reference, out=tmp_path / "cnt.png")
    ax_cnt, ax_val = fig.axes[:2]
    proposed_cnt = ax_cnt.get_lines()[0]
    assert list(proposed_cnt.get_xdata()) == [1, 2] and list(proposed_cnt.get_ydata()) == [5.0, 1.5]
    assert list(ax_cnt.get_lines()[1].get_ydata()) == [1.8, 1.8]  # the clean sources' level
    assert [list(line.get_ydata()) for line in ax_val.get_lines()] == [[2.0, 2.0], [2.5, 3.5]]
    assert (tmp_path / "cnt.png").exists()
