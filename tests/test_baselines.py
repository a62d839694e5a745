"""The baseline methods of Tables 1 and 12 (bimodal.baselines): PIT's best permutation and MixIT's best mixing
matrix against brute force written out here, the test-time matching, config checks, and on the smoke profile a
falling loss for each method and one full run through the engine."""

import itertools
import json

import numpy as np
import pytest
import torch

from bimodal.config import ConfigError, get_config
from conftest import fit_fixed_batch, smoke_environment


def _l1(a, b, w=None):
    err = (a - b).abs()
    return float((err * w).mean() if w is not None else err.mean())


def test_pit_finds_the_permutation_brute_force_finds():
    from bimodal.baselines.permutation import pit_loss

    g = torch.Generator().manual_seed(0)
    targets = torch.randn(2, 3, 5, 7, generator=g)
    # item 0: the outputs are the targets in the order (2, 0, 1) plus a little noise; item 1: unrelated outputs
    est = torch.stack(
        [targets[0, [2, 0, 1]] + 0.01 * torch.randn(3, 5, 7, generator=g), torch.randn(3, 5, 7, generator=g)]
    )
    weight = torch.rand(2, 1, 5, 7, generator=g) + 0.5
    loss, reordered = pit_loss(est, targets, weight)
    brute = []
    for b in range(2):
        costs = {
            perm: sum(_l1(est[b, perm[s]], targets[b, s], weight[b, 0]) for s in range(3))
            for perm in itertools.permutations(range(3))
        }
        best = min(costs, key=costs.get)
        brute.append(costs[best])
        assert torch.equal(reordered[b], est[b, list(best)])
        if b == 0:
            assert best == (1, 2, 0)  # est[1] answers target 0, est[2] target 1, est[0] target 2
    assert loss.item() == pytest.approx(np.mean(brute), rel=1e-5)  # Σ over sources, mean over the batch


def test_pit_gradient_reaches_only_the_matched_pairs():
    from bimodal.baselines.permutation import pit_loss

    targets = torch.tensor([[[1.0, 2.0], [5.0, 5.0]]])
    est = torch.tensor([[[5.0, 4.0], [1.0, 2.0]]], requires_grad=True)  # swapped: est 0 ≈ target 1
    loss, _ = pit_loss(est, targets)
    loss.backward()
    assert loss.item() == pytest.approx(0.5)  # |5-5| + |4-5| over 2 samples = 0.5; est 1 is exact
    assert est.grad[0, 1].abs().sum() == 0 and est.grad[0, 0].tolist() == [0.0, -0.5]


def test_mixit_finds_the_mixing_matrix_brute_force_finds():
    from bimodal.baselines.permutation import mixing_matrix, mixit_loss

    g = torch.Generator().manual_seed(1)
    parts = torch.randn(3, 4, 6, generator=g)  # [B, M = 4, T]
    # item 0: mixture 0 = outputs 0 + 2, mixture 1 = outputs 1 + 3 exactly; items 1, 2: noisy mixtures
    mixtures = torch.stack([parts[:, 0] + parts[:, 2], parts[:, 1] + parts[:, 3]], 1)
    mixtures[1:] += 0.5 * torch.randn(2, 2, 6, generator=g)
    loss, est_mix = mixit_loss(parts, mixtures)
    A = mixing_matrix(parts, mixtures)
    assert A[0].tolist() == [0, 1, 0, 1]
    brute = []
    for b in range(3):
        costs = {}
        for assign in itertools.product(range(2), repeat=4):  # all 2^4 binary mixing matrices, one 1 per column
            sums = [sum((parts[b, m] for m in range(4) if assign[m] == n), torch.zeros(6)) for n in range(2)]
            costs[assign] = sum(_l1(sums[n], mixtures[b, n]) for n in range(2))
        best = min(costs, key=costs.get)
        brute.append(costs[best])
        assert tuple(A[b].tolist()) == best
        assert torch.allclose(est_mix[b], torch.stack([parts[b][A[b] == n].sum(0) for n in range(2)]))
    assert brute[0] == pytest.approx(0.0, abs=1e-6)
    assert loss.item() == pytest.approx(np.mean(brute), rel=1e-5)


def test_mixit_allows_an_empty_mixture_and_backpropagates():
    from bimodal.baselines.permutation import mixing_matrix, mixit_loss

    mixtures = torch.tensor([[[0.0, 0.0], [3.0, 1.0]]])  # mixture 0 silent
    parts = torch.tensor([[[1.0, 0.0], [2.0, 1.0]]], requires_grad=True)
    loss, _ = mixit_loss(parts, mixtures)
    assert mixing_matrix(parts.detach(), mixtures).tolist() == [[1, 1]]
    assert loss.item() == pytest.approx(0.0)
    loss.backward()
    assert parts.grad is not None


def test_outputs_are_matched_to_references_by_si_sdr():
    from bimodal.baselines.permutation import match_outputs

    g = torch.Generator().manual_seed(2)
    refs = torch.randn(2, 400, generator=g)
    est = torch.stack([torch.randn(400, generator=g), 0.3 * refs[1], refs[0] + 0.1 * torch.randn(400, generator=g)])
    assert match_outputs(est, refs).tolist() == [2, 1]  # M = 3 > S = 2: output 0 is dropped
    three = torch.cat([refs, torch.randn(1, 400, generator=g)])
    choice = match_outputs(est[1:], three)  # M = 2 < S = 3: the third reference reuses its best output
    assert choice[:2].tolist() == [1, 0] and choice[2] in (0, 1)


def test_configs_of_the_baselines_are_checked():
    assert get_config("smoke", {"train.method": "pit", "data.k_sources": 1}).train.method == "pit"
    with pytest.raises(ConfigError, match="data.k_sources"):
        get_config("smoke", {"train.method": "pit", "data.k_sources": 2})
    with pytest.raises(ConfigError, match="data.k_sources"):
        get_config("smoke", {"train.method": "mixit", "data.k_sources": 1})
    with pytest.raises(ConfigError, match="train.method"):
        get_config("smoke", {"train.method": "pit_typo"})


def test_unconditional_separator_shapes_and_ignores_prompts():
    from bimodal.baselines.unconditional import UnconditionalSeparator

    cfg = get_config("smoke")
    sep = UnconditionalSeparator(cfg.model, 384, 3).eval()
    wave = torch.randn(2, cfg.data.segment_samples)
    out = sep(wave)
    assert out["wave"].shape == (2, 3, cfg.data.segment_samples) and out["mask"].shape[:2] == (2, 3)
    assert not torch.allclose(out["mask"][:, 0], out["mask"][:, 1])  # the slots differ from the start
    tokens = torch.randn(2, 3, 5, 384)
    assert torch.equal(sep(wave, tokens, torch.ones(2, 3, 5, dtype=torch.bool))["wave"], out["wave"])


# ------------------------------------------------------------------------------------------------------------
# Smoke profile through the engine


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    yield from smoke_environment(tmp_path_factory.mktemp("baselines"))


def _cfg(method, **over):
    base = {"train.num_threads": 1, "train.method": method, "data.k_sources": 1 if method == "pit" else 2}
    base.update({k.replace("__", "."): v for k, v in over.items()})
    return get_config("smoke", base)


@pytest.mark.parametrize(
    "method, over",
    [("pit", {}), ("mixpit", {}), ("mixit", {}), ("mixit", {"train__loss_domain": "waveform"}), ("lass_net", {})],
)
def test_loss_falls_on_a_fixed_batch(env, method, over):
    from bimodal.backends import load_embedding
    from bimodal.datasets.manifest import load_manifest
    from bimodal.datasets.mixtures import MixtureDataset, collate_mixtures
    from bimodal.train import Objective, _as_batch, build_separator

    cfg = _cfg(method, **over)
    torch.manual_seed(0)
    emb = load_embedding(cfg.embedding)
    sep = build_separator(cfg, emb)
    assert getattr(sep, "n_outputs", None) == {"pit": 2, "mixpit": 2, "mixit": 4}.get(method)
    ds = MixtureDataset(cfg.data, load_manifest(cfg.data), "train", seed=0, items=4)
    ds.set_epoch(0)
    batch = _as_batch(collate_mixtures([ds[i] for i in range(4)]))
    objective = Objective(cfg, sep, emb)
    totals, logged = fit_fixed_batch(objective, sep, batch)
    assert set(logged) == {{"pit": "pit", "mixpit": "pit"}.get(method, method.replace("lass_net", "url")), "total"}
    assert sum(totals[-3:]) / 3 < 0.8 * sum(totals[:3]) / 3, totals


@pytest.mark.parametrize(
    "method, weights",
    [("mixit", "slots"), ("timbre_pretrained", "classifier.head.1.weight"), ("lass_net", "masker.enc_film.0.weight")],
)
def test_a_baseline_run_trains_evaluates_and_reloads(env, method, weights):
    from pathlib import Path

    from bimodal.train import train_run

    cfg = _cfg(method, train__epochs=1)
    first = train_run(cfg, progress=False)
    assert "test3" not in first
    summary = train_run(cfg, progress=False, test_sets=("test2", "test3"))  # Table 12 after Table 1: adds test3
    assert summary["test2"] == first["test2"] and summary["best_epoch"] == first["best_epoch"]
    run = Path(summary["run_dir"])
    assert run.name.startswith(f"smoke-{method}-") and summary["method"] == method
    assert summary["test2"]["sdr"]["n"] + summary["test2"]["sdr"]["n_skipped"] == 6
    assert summary["test3"]["sdr"]["n"] + summary["test3"]["sdr"]["n_skipped"] == 6
    assert weights in torch.load(run / "best.pt", weights_only=True)["state_dict"]


def test_classification_loss_on_a_hand_built_case():
    from bimodal.baselines.classifier import classification_loss

    logits = torch.tensor([[0.0, 2.0], [-1.0, 0.0]])
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    sp = torch.nn.functional.softplus
    # BCE(x, 1) = softplus(-x), BCE(x, 0) = softplus(x); summed over classes, averaged over items
    expected = ((sp(torch.tensor(0.0)) + sp(torch.tensor(2.0))) + (sp(torch.tensor(-1.0)) + sp(torch.tensor(0.0)))) / 2
    assert classification_loss(logits, labels).item() == pytest.approx(expected.item(), rel=1e-6)


def test_the_classifier_learns_from_mixture_labels_only():
    from bimodal.baselines.classifier import mixture_label_batch

    sources = torch.arange(2 * 2 * 2 * 3, dtype=torch.float32).reshape(2, 2, 2, 3)  # [B, N, K, T]
    prompts = [
        [["The sound of a", "The sound of b"], ["The sound of c", "The sound of d"]],
        [["The sound of b", "The sound of c"], ["The sound of a", "The sound of d"]],
    ]
    waves, labels = mixture_label_batch(sources, prompts, ["a", "b", "c", "d"])
    assert torch.equal(waves[:4], sources.sum(2).reshape(4, 3)) and torch.equal(waves[4:], sources.sum((1, 2)))
    assert labels.tolist() == [[1, 1, 0, 0], [0, 0, 1, 1], [0, 1, 1, 0], [1, 0, 0, 1], [1, 1, 1, 1], [1, 1, 1, 1]]


@pytest.mark.parametrize("method", ["timbre_concurrent", "timbre_pretrained", "weak_sup"])
def test_classifier_methods_lower_their_loss_and_leave_a_pretrained_classifier_alone(env, method):
    from bimodal.backends import load_embedding
    from bimodal.datasets.manifest import load_manifest
    from bimodal.datasets.mixtures import MixtureDataset, collate_mixtures
    from bimodal.train import Objective, _as_batch, build_separator

    cfg = _cfg(method)
    torch.manual_seed(0)
    emb = load_embedding(cfg.embedding)
    sep = build_separator(cfg, emb)
    assert len(sep.classes) == 21
    frozen_before = {k: v.clone() for k, v in sep.classifier.state_dict().items()}
    ds = MixtureDataset(cfg.data, load_manifest(cfg.data), "train", seed=0, items=4)
    ds.set_epoch(0)
    batch = _as_batch(collate_mixtures([ds[i] for i in range(4)]))
    objective = Objective(cfg, sep, emb)
    opt = torch.optim.Adam([p for p in sep.parameters() if p.requires_grad], lr=3e-3)
    totals = []
    for _ in range(20):
        loss, logged = objective(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        totals.append(logged["total"])
    expected = {
        "timbre_concurrent": {"url", "crl", "cls", "cls_train", "total"},
        "timbre_pretrained": {"url", "crl", "cls", "total"},
        "weak_sup": {"cls", "consistency", "total"},
    }
    assert set(logged) == expected[method]
    assert sum(totals[-3:]) / 3 < 0.9 * sum(totals[:3]) / 3, totals
    after = sep.classifier.state_dict()
    unchanged = all(torch.equal(frozen_before[k], after[k]) for k in after)
    assert unchanged == (method != "timbre_concurrent")


def test_lass_net_film_starts_as_identity_and_is_conditioned_after_a_step():
    from bimodal.baselines.lass_net import LassNetSeparator

    cfg = get_config("smoke")
    torch.manual_seed(0)
    sep = LassNetSeparator(cfg.model, 16)
    wave = torch.randn(2, cfg.data.segment_samples)
    tokens, mask = torch.randn(2, 3, 4, 16), torch.ones(2, 3, 4, dtype=torch.bool)
    out = sep(wave, tokens, mask)
    assert out["mask"].shape[:2] == (2, 3) and out["wave"].shape == (2, 3, cfg.data.segment_samples)
    assert torch.allclose(out["mask"][:, 0], out["mask"][:, 1])  # zero-initialised FiLM: the prompt is not used yet
    out["mag"][:, 0].sum().backward()
    torch.optim.SGD(sep.parameters(), lr=1.0).step()
    again = sep(wave, tokens, mask)["mask"]
    assert not torch.allclose(again[:, 0], again[:, 1])  # after one step the prompt changes the mask


def test_every_declared_baseline_cell_is_a_valid_config_and_table12_reads_test3(tmp_path, monkeypatch):
    from bimodal import experiments as X
    from bimodal.train import run_dir_for

    assert all(
        c.overrides is None and "VGGSound" in c.reason or c.reason.startswith("image-conditional")
        for c in X.TABLES["table10"].cells
    )
    for table in ("table1", "table12", "table10"):
        cells = X.TABLES[table].cells
        assert len({(c.row, c.column) for c in cells}) == len(cells)
        for cell in cells:
            if cell.overrides is None:
                assert cell.reason and not cell.core
                continue
            for profile in ("smoke", "quick"):
                X.cell_configs(cell, profile, [0])  # raises ConfigError if a declaration does not fit
    assert X.TABLES["table12"].test_set == "test3" and X.TABLES["table1"].test_set == "test2"
    by_key = {c.key: c for c in X.TABLES["table1"].cells}
    for k in ("single", "k2", "k3", "k4"):  # one run, three rows: the same configs and seeds
        same = [by_key[f"{prefix}/{k}"] for prefix in ("bertsep_star", "clipsep_text_star")]
        clapsep = by_key["supervised/single" if k == "single" else f"mix_and_separate/{k}"]
        for cell in same:
            assert [c.hash() for c in X.cell_configs(cell, "quick", [0])] == [
                c.hash() for c in X.cell_configs(clapsep, "quick", [0])
            ]
    runnable = {c.row for c in X.TABLES["table1"].cells if c.overrides is not None}
    assert {"PIT*", "MixIT", "MixPIT", "CLIPSep-Text", "BertSep*", "LASS-Net", "Weak-Sup"} <= runnable
    monkeypatch.setenv("BIMODAL_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("BIMODAL_RESULTS", str(tmp_path / "results"))
    cell = next(c for c in X.TABLES["table12"].cells if c.row == "MixIT" and c.column == "2-source")
    cfg = X.cell_configs(cell, "quick", [0])[0]
    run_dir_for(cfg).mkdir(parents=True)
    stat = lambda v: {"mean": v, "median": v, "std": 0.0, "n": 10, "n_skipped": 0}  # noqa: E731
    (run_dir_for(cfg) / "summary.json").write_text(
        json.dumps({"run_dir": str(run_dir_for(cfg)), "test2": {"sdr": stat(1.0)}, "test3": {"sdr": stat(-2.0)}})
    )
    t12 = X.collect_table("table12", "quick", [0], "all", write=False).set_index(["row", "column"])
    t1 = X.collect_table("table1", "quick", [0], "all", write=False).set_index(["row", "column"])
    assert t12.loc[("MixIT", "2-source"), "here_mean"] == -2.0 and t1.loc[("MixIT", "2-source"), "here_mean"] == 1.0
