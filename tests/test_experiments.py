"""The experiment registry: shared runs are one config, tables collect what the runs measured (here: hand-written
summaries in a temporary runs folder), and the batch run list tells trained from reused runs."""
import json
import os
import time

import pytest

from bimodal import experiments as X
from bimodal.train import run_dir_for


@pytest.fixture()
def roots(tmp_path, monkeypatch):
    monkeypatch.setenv("BIMODAL_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("BIMODAL_RESULTS", str(tmp_path / "results"))
    return tmp_path


def _cell(table: str, row: str, column: str) -> X.Cell:
    return next(c for c in X.TABLES[table].cells if c.row == row and c.column == column)


def _fake_summary(cfg, sdr: float, sir: float = 1.0, fingerprint: str | None = None) -> str:
    """A finished run as train_run leaves it, with made-up metrics (the registry only reads summary.json)."""
    run_dir = run_dir_for(cfg)
    run_dir.mkdir(parents=True)
    stat = lambda v: {"mean": v, "median": v, "std": 0.0, "n": 10, "n_skipped": 0}  # noqa: E731
    summary = {"finished": True, "run_dir": str(run_dir), "method": cfg.train.method, "seed": cfg.train.seed,
               "train_seconds": 100.0 + cfg.train.seed, "test2": {"sdr": stat(sdr), "sir": stat(sir)}}
    if fingerprint is not None:
        summary["embedding_fingerprint"] = fingerprint
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir.name


def test_shared_cells_are_one_run():
    # the L_URL-only row of Table 8 is Table 1's CLAPSep* 2-source cell; (c) of the three-way result is Table 1's
    # proposed 2-source cell: one config hash each, so they train once
    pairs = [(("table8", "L_URL", "2-source"), ("table1", "CLAPSep* (mix-and-separate)", "2-source")),
             (("three_way", "(c) proposed", "2-source test"), ("table1", "Proposed (bi-modal CLAP)", "2-source")),
             (("three_way", "(c') proposed, single sources predicted from the MoM (authors' code)", "2-source test"),
              ("diagnosis", "(c) single sources predicted from the MoM (authors' code)", "2-source test")),
             (("teachers", "the default surrogate (12,000 steps, three SoundFonts)", "2-source test"),
              ("three_way", "(c) proposed", "2-source test")),
             (("teachers", "surrogate_1sf_600 (the default until 2026-12-02; 600 steps, TimGM6mb)", "2-source test"),
              ("diagnosis", "(c) with the surrogate_1sf_600 embedding (the default until 2026-12-02)",
               "2-source test"))]
    for a, b in pairs:
        ca, cb = X.cell_configs(_cell(*a), "quick", [0])[0], X.cell_configs(_cell(*b), "quick", [0])[0]
        assert ca.hash() == cb.hash()
    planned = X.planned_runs(["table1", "table8", "three_way", "teachers"], "quick", [0], "all")
    assert len({c.hash() for c in planned}) == len(planned)


def test_collect_table_reports_mean_std_and_why_a_cell_is_empty(roots):
    table = "three_way"
    sup, mas = _cell(table, "(a) supervised", "2-source test"), _cell(table, "(b) mix-and-separate", "2-source test")
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
    cells = [_cell("three_way", "(a) supervised", "2-source test"),
             _cell("three_way", "(b) mix-and-separate", "2-source test")]
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

    table, col = "diagnosis", "2-source test"
    proposed = _cell(table, "(c) proposed: L_URL + L_CNT + L_CRL, α = 0.1", col)
    previous = _cell(table, "(c) with the surrogate_1sf_600 embedding (the default until 2026-12-02)", col)
    no_crl = _cell(table, "(c) without L_CRL: L_URL + L_CNT", col)
    mas = _cell(table, "(b) mix-and-separate: L_URL", col)
    default_fp, previous_fp = file_sha256(ASSET)[:12], file_sha256(ASSET.parent / "surrogate_1sf_600.pt")[:12]
    assert default_fp != previous_fp
    _fake_summary(X.cell_configs(proposed, "quick", [0])[0], 6.0, fingerprint=default_fp)
    _fake_summary(X.cell_configs(previous, "quick", [0])[0], 5.0, fingerprint=previous_fp)
    _fake_summary(X.cell_configs(no_crl, "quick", [0])[0], 5.0)  # a summary from before fingerprints
    _fake_summary(X.cell_configs(mas, "quick", [0])[0], 5.5)  # no L_CNT: no fingerprint needed
    df = X.collect_table(table, "quick", [0], "all").set_index("row")
    assert df.loc[proposed.row, "embedding"] == f"surrogate ({default_fp}), the default"
    assert df.loc[previous.row, "embedding"] == f"surrogate_1sf_600 ({previous_fp})"
    assert df.loc[no_crl.row, "embedding"] == "not recorded (trained by older code)"
    assert df.loc[mas.row, "embedding"] == ""
    md = (roots / "results" / "diagnosis.md").read_text()
    assert f"surrogate_1sf_600 ({previous_fp}): {previous.row}" in md
    assert f"surrogate ({default_fp}), the default: {proposed.row}" in md
    assert X.embedding_label("0123456789ab") == "weights 0123456789ab (not a shipped surrogate)"


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
    readme = roots / "README.md"
    readme.write_text("# guide\n\nby hand\n<!-- claims:start -->\nstale text\n<!-- claims:end -->\nafter, by hand\n"
                      "<!-- choices:start -->\n<!-- choices:end -->\n")
    docs, index = roots / "docs" / "RESULTS.md", roots / "INDEX.md"
    assert write_report(readme, docs, index) == [readme, docs, index]
    text = readme.read_text()
    assert text.startswith("# guide\n\nby hand\n<!-- claims:start -->\n| the paper's claim |")
    assert "<!-- claims:end -->\nafter, by hand\n<!-- choices:start -->\n| topic |" in text and "stale text" not in text
    results = docs.read_text()
    assert f"| {sup.row} | {sup.paper:.1f} | 8.0 ± 1.4 (2) |" in results  # paper beside here, mean ± sample std (n)
    assert "| proposed | 90.0 | 10 |" in results  # a CSV-only table, rendered
    assert "| test suite | `make test` | 431 | 2-core CPU | x |" in results
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
    assert table.endswith("The quick profile differs in: joint embedding: the shipped CLAP-surrogate.")
