"""The paper's experiments: the tables declared as data (tables), trained and collected into results/ (collect),
rendered (report), run as the papermill batch of the notebooks (batch), and the helpers the notebooks call
(notebook). `from bimodal import experiments as X` gives the names the notebooks use."""

from bimodal.experiments.batch import notebooks, reproduce, run_notebook
from bimodal.experiments.collect import (
    batch_cost,
    batch_runs,
    cell_configs,
    collect_metrics,
    collect_table,
    embedding_label,
    planned_runs,
    run_table,
)
from bimodal.experiments.notebook import MODELS, config_of, ensure_run, load_model, pair_mixture
from bimodal.experiments.report import render_markdown
from bimodal.experiments.tables import TABLES, Cell, Table

__all__ = [
    "notebooks",
    "reproduce",
    "run_notebook",
    "batch_cost",
    "batch_runs",
    "cell_configs",
    "collect_metrics",
    "collect_table",
    "embedding_label",
    "planned_runs",
    "run_table",
    "MODELS",
    "config_of",
    "ensure_run",
    "load_model",
    "pair_mixture",
    "render_markdown",
    "TABLES",
    "Cell",
    "Table",
]
