"""The fast path (bimodal.compute, the default) computes the same function as the eager reference: the same losses
and gradients of a proposed step, in float64 (where only the order of operations differs) and in float32 (where the
fast path must stay as close to the float64 truth as the reference itself is); the pieces on their own."""

import copy

import numpy as np
import pytest
import torch

from bimodal import compute
from bimodal.config import get_config
from bimodal.datasets.labels import CLASSES, mixture_prompt, single_prompt

# the quick profile's structure (gate-first output, channels-last decoder, two Modulator levels) at smoke sizes
OVERRIDES = {"train.method": "proposed", "model.levels": 4, "model.modulator_levels": 2}


def _batch(cfg, seed=0):
    from bimodal.train import Batch

    g = torch.Generator().manual_seed(seed)
    B, N, K, T = 2, cfg.data.n_mix, cfg.data.k_sources, cfg.data.segment_samples
    sources = torch.randn(B, N, K, T, generator=g, dtype=torch.float64) * 0.05
    picks = torch.randperm(len(CLASSES), generator=g)[: B * N * K].reshape(B, N, K).tolist()
    classes = [[[CLASSES[c] for c in comp] for comp in mom] for mom in picks]
    return Batch(
        sources,
        [[mixture_prompt(c) for c in mom] for mom in classes],
        [[[single_prompt(x) for x in c] for c in mom] for mom in classes],
    )


def _loss_and_grads(cfg, separator, embedding, batch, reference: bool):
    from bimodal.train import Objective

    with compute.reference_impl(reference):
        separator.zero_grad(set_to_none=True)
        embedding._text_cache.clear()
        loss, parts = Objective(cfg, separator, embedding)(batch)
        loss.backward()
        grads = torch.cat([p.grad.reshape(-1) for p in separator.parameters() if p.grad is not None])
    return loss.detach(), parts, grads


@pytest.fixture(scope="module")
def models():
    from bimodal.backends import load_embedding
    from bimodal.train import build_separator

    cfg = get_config("smoke", OVERRIDES)
    emb32 = load_embedding(cfg.embedding)
    torch.manual_seed(0)
    sep32 = build_separator(cfg, emb32)
    emb64, sep64 = copy.deepcopy(emb32).double(), copy.deepcopy(sep32).double()
    return cfg, emb32, sep32, emb64, sep64


def test_proposed_step_same_losses_and_gradients_in_float64(models):
    cfg, _, _, emb64, sep64 = models
    batch = _batch(cfg)
    ref_loss, ref_parts, ref_g = _loss_and_grads(cfg, sep64, emb64, batch, reference=True)
    fast_loss, fast_parts, fast_g = _loss_and_grads(cfg, sep64, emb64, batch, reference=False)
    assert set(ref_parts) == {"url", "cnt", "crl", "total"}
    for name in ref_parts:  # every loss term, to 1e-5 relative (it is ~1e-12: only the order of operations differs)
        assert fast_parts[name] == pytest.approx(ref_parts[name], rel=1e-5), name
    assert float((fast_loss - ref_loss).abs() / ref_loss.abs()) < 1e-10
    assert float((fast_g - ref_g).norm() / ref_g.norm()) < 1e-5
    assert ref_g.norm() > 0


def test_proposed_step_float32_fast_path_as_close_to_float64_as_the_reference(models):
    cfg, emb32, sep32, emb64, sep64 = models
    batch = _batch(cfg, seed=1)
    truth_loss, _, truth_g = _loss_and_grads(cfg, sep64, emb64, batch, reference=True)
    b32 = type(batch)(batch.sources.float(), batch.mixture_prompts, batch.source_prompts)
    ref_loss, _, ref_g = _loss_and_grads(cfg, sep32, emb32, b32, reference=True)
    fast_loss, _, fast_g = _loss_and_grads(cfg, sep32, emb32, b32, reference=False)
    assert float((fast_loss - ref_loss).abs() / ref_loss.abs()) < 1e-5  # the tolerance on the loss
    # float32 gradients are only as exact as float32 is (ReLU/max decisions near 0 flip with the last bit); the fast
    # path must not be further from the float64 truth than the reference is, within a small margin
    ref_err = float((ref_g.double() - truth_g).norm() / truth_g.norm())
    fast_err = float((fast_g.double() - truth_g).norm() / truth_g.norm())
    assert fast_err < 2 * ref_err + 1e-5, (fast_err, ref_err)
    assert float((truth_loss - fast_loss.double()).abs() / truth_loss.abs()) < 1e-5


def test_text_states_real_tokens_only_and_padding_states_on_request(models):
    _, emb32, _, _, _ = models
    prompts = ["The sound of violin", "The sound mixture of accordion, acoustic guitar, and xylophone"]
    emb32._text_cache.clear()
    with compute.reference_impl(True):
        ref_pooled, ref_tokens, ref_mask = emb32.embed_text(prompts)
    fast_pooled, fast_tokens, fast_mask = emb32.embed_text(prompts)
    full_pooled, full_tokens, _ = emb32.embed_text(prompts, padding_states=True)
    assert torch.equal(fast_mask, ref_mask) and ref_mask.shape[1] == 77
    real = ref_mask.unsqueeze(-1)
    assert torch.allclose(fast_tokens * real, ref_tokens * real, atol=1e-5)  # real positions agree
    assert torch.count_nonzero(fast_tokens[~ref_mask]) == 0  # padded positions hold zeros
    assert torch.equal(full_tokens, ref_tokens)  # ... unless the encoder's own padded states are asked for
    assert torch.allclose(fast_pooled, ref_pooled, atol=1e-6) and torch.equal(full_pooled, ref_pooled)
    assert ref_tokens[~ref_mask].abs().sum() > 0  # the reference's padded states are not zeros: the test can fail


def test_cross_attention_without_key_mask_sees_the_encoders_padded_states():
    from bimodal.backends import load_embedding
    from bimodal.train import Objective

    cfg = get_config("smoke", {**OVERRIDES, "model.ca_key_padding_mask": False})
    emb = load_embedding(cfg.embedding)
    tokens, _ = Objective(cfg, torch.nn.Identity(), emb)._tokens([["The sound of violin"]])
    _, full, mask = emb.embed_text(["The sound of violin"], padding_states=True)
    assert torch.equal(tokens[0], full) and tokens[0][~mask].abs().sum() > 0


def test_frozen_surrogate_with_folded_batchnorm_is_the_same_function(models):
    _, _, _, emb64, _ = models
    tower = emb64.audio
    x = torch.randn(3, 64, 40, dtype=torch.float64)
    with compute.reference_impl(True):
        xr = x.clone().requires_grad_()
        ref = tower.encode_logmel(xr)
        ref.square().sum().backward()
    xf = x.clone().requires_grad_()
    fast = tower.encode_logmel(xf)
    fast.square().sum().backward()
    assert torch.allclose(fast, ref, rtol=1e-10, atol=1e-12)
    assert torch.allclose(xf.grad, xr.grad, rtol=1e-9, atol=1e-12)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in tower.convs)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in tower._folded())


def test_one_pass_bss_eval_with_the_mixture_matches_two_calls():
    from bimodal.metrics import evaluate_mixture

    rng = np.random.default_rng(0)
    refs = rng.standard_normal((2, 6000))
    ests = refs + 0.3 * rng.standard_normal((2, 6000)) + 0.2 * refs[::-1]
    mix = refs.sum(0)
    fast = evaluate_mixture(refs, ests, mix)
    with compute.reference_impl(True):
        ref = evaluate_mixture(refs, ests, mix)
    for key in ref:
        assert fast[key] == pytest.approx(ref[key], abs=1e-9), key


def test_reference_path_is_selected_by_the_environment(monkeypatch):
    import importlib

    monkeypatch.setenv("BIMODAL_REFERENCE_IMPL", "1")
    mod = importlib.reload(compute)
    try:
        assert mod.use_reference() and mod.execution(1)["path"] == "reference"
    finally:
        monkeypatch.delenv("BIMODAL_REFERENCE_IMPL")
        importlib.reload(compute)
    assert not compute.use_reference()
