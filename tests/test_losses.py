"""The objectives of eqs. 2–7 on hand-built cases, against a brute-force eq. 3, and their gradients."""

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from bimodal.losses import (
    cnt_loss,
    crl_loss,
    gather_with_grad,
    magnitude_weight,
    ssl_loss,
    twl_loss,
    url_loss,
    weighted_l1,
)


# ---------------------------------------------------------------------------------------------------------- ℓ1


def test_weighted_l1_hand_example():
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    target = torch.tensor([[0.0, 2.0], [5.0, 1.0]])
    # |p − t| = [[1, 0], [2, 3]]
    assert weighted_l1(pred, target).item() == pytest.approx(6 / 4)
    w = torch.tensor([[2.0], [0.5]])  # broadcast over the last dim: [[2, 0], [1, 1.5]]
    assert weighted_l1(pred, target, w).item() == pytest.approx(4.5 / 4)


def test_weight_that_would_broadcast_up_is_refused():
    p = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="weight of shape"):
        weighted_l1(p, p, torch.ones(2, 3, 1))
    with pytest.raises(ValueError, match="target shape"):
        url_loss(torch.zeros(2, 2, 3), torch.zeros(2, 2, 4))


def test_url_loss_hand_example():
    # B = 2 MoMs, N = 2 components, 3 "bins" each.
    pred = torch.tensor([[[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], [[2.0, 0.0, 0.0], [1.0, 1.0, 1.0]]])
    target = torch.tensor([[[1.0, 2.0, 4.0], [0.0, 3.0, 0.0]], [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]])
    # per (b, n) mean |p − t|: b0: (0+1+3)/3, (0+3+0)/3 -> Σ_n = 7/3; b1: 2/3, 0 -> 2/3; mean over b = 3/2
    assert url_loss(pred, target).item() == pytest.approx(1.5)
    # a per-MoM weight [B, 1, 3] (as magnitude_weight(|MoM|)) multiplies both components' errors
    w = torch.tensor([[[1.0, 1.0, 0.5]], [[0.0, 3.0, 3.0]]])
    # b0: (0+1+1.5)/3 + (0+3+0)/3 = 5.5/3; b1: 0 + 0 -> mean over b = 5.5/6
    assert url_loss(pred, target, w).item() == pytest.approx(5.5 / 6)
    # it equals N · weighted_l1 (the authors' Σ_n L1(pred_n, M_n, w_X))
    assert url_loss(pred, target, w).item() == pytest.approx(2 * weighted_l1(pred, target, w).item())


# --------------------------------------------------------------------------------------------------------- CRL


def test_crl_is_zero_when_single_source_predictions_sum_to_the_component():
    b, n, k, f, t = 3, 2, 3, 5, 4
    parts = torch.rand(b, n, k, f, t)
    valid = torch.tensor([True, True, False]).expand(b, n, k).clone()
    valid[0, 1, 2] = True  # one component really has 3 sources
    component = (parts * valid[..., None, None]).sum(dim=2)
    pred = parts.clone()
    pred[~valid] = float("nan")  # padded slots hold garbage: they must not leak into the sum
    w = magnitude_weight(component)
    assert crl_loss(pred, component, valid, w).item() == 0.0
    # and it is not zero when a real source is missing
    assert crl_loss(pred.nan_to_num(0.0), component, valid.logical_and(torch.rand(b, n, k) > 2), w).item() > 0.01


def test_crl_fractional_weights_for_repeated_sources():
    # AudioCaps style: a component with 2 sources padded to K = 3 by repeating the second (weight 1/count each).
    s1, s2 = torch.rand(1, 1, 6), torch.rand(1, 1, 6)
    pred = torch.stack([s1, s2, s2], dim=2)  # [1, 1, 3, 6]
    component = s1 + s2  # [1, 1, 6]
    weights = torch.tensor([[[1.0, 0.5, 0.5]]])
    assert crl_loss(pred, component, weights).item() == pytest.approx(0.0, abs=1e-7)
    # with unit weights the repeat is counted twice: the error is exactly |s2| averaged
    assert crl_loss(pred, component).item() == pytest.approx(s2.mean().item(), rel=1e-6)


def test_crl_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match="component mixtures"):
        crl_loss(torch.zeros(2, 2, 3, 5), torch.zeros(2, 3, 5))
    with pytest.raises(ValueError, match=r"\[B, N, K\]"):
        crl_loss(torch.zeros(2, 2, 3, 5), torch.zeros(2, 2, 5), torch.ones(2, 2, 2, dtype=torch.bool))


# --------------------------------------------------------------------------------------------------------- CNT


def _brute_force_eq3(audio, text, scale, valid, text_ids=None):
    """Eqs. 3–4 by explicit loops, in Python floats: one row and one column per anchor (see cnt_loss docstring)."""
    b, n, k, _ = audio.shape
    anchors = [(i, j, a) for i in range(b) for j in range(n) for a in range(k) if valid[i, j, a]]

    def c(x, y):  # scale · cosine(audio of x, text of y)
        u, v = audio[x], text[y]
        return scale * float(u @ v) / (float(u.norm()) * float(v.norm()))

    def allowed(x, y):
        return text_ids is None or x == y or int(text_ids[x]) != int(text_ids[y])

    total = 0.0
    for i in range(b):
        for j in range(n):
            mine = [(i, j, a) for a in range(k) if valid[i, j, a]]
            if not mine:
                continue
            acc = 0.0
            for x in mine:
                row = [math.exp(c(x, y)) for y in anchors if allowed(x, y)]
                col = [math.exp(c(y, x)) for y in anchors if allowed(y, x)]
                acc += math.log(math.exp(c(x, x)) / sum(row)) + math.log(math.exp(c(x, x)) / sum(col))
            total += -acc / (2 * len(mine))
    return total / b


def test_cnt_matches_brute_force_eq3_float64():
    g = torch.Generator().manual_seed(3)
    b, n, k, d = 3, 2, 3, 8
    audio = torch.randn(b, n, k, d, generator=g, dtype=torch.float64)
    text = torch.randn(b, n, k, d, generator=g, dtype=torch.float64)
    valid = torch.rand(b, n, k, generator=g) > 0.3
    valid[0, 0] = False  # a component with no valid source contributes 0
    valid[1, 1] = True
    for scale in (1.0, 7.5):
        got = cnt_loss(audio, text, scale, valid).item()
        assert got == pytest.approx(_brute_force_eq3(audio, text, scale, valid), abs=1e-9)
    ids = torch.randint(0, 4, (b, n, k), generator=g)
    got = cnt_loss(audio, text, torch.tensor(7.5, dtype=torch.float64), valid, text_ids=ids).item()
    assert got == pytest.approx(_brute_force_eq3(audio, text, 7.5, valid, ids), abs=1e-9)


def test_cnt_uninformative_embeddings_give_log_of_candidates():
    b, n, k, d = 4, 2, 2, 16
    same = torch.randn(d)
    audio, text = same.expand(b, n, k, d), same.expand(b, n, k, d)
    p = b * n * k
    # every anchor has P candidates in both directions -> per component log P, Σ over N components
    assert cnt_loss(audio, text, 10.0).item() == pytest.approx(n * math.log(p), rel=1e-6)
    valid = torch.ones(b, n, k, dtype=torch.bool)
    valid[:, :, 1] = False  # padded: P halves
    assert cnt_loss(audio, text, 10.0, valid).item() == pytest.approx(n * math.log(p // 2), rel=1e-6)


def test_cnt_perfect_separated_embeddings_go_to_zero():
    b, n, k = 2, 2, 2
    p = b * n * k
    onehot = torch.eye(p).reshape(b, n, k, p)
    # cos = 1 with its own prompt, 0 with every other: each direction is log(1 + (P−1)·e^(−scale)) per anchor
    scale = 5.0
    expected = n * math.log1p((p - 1) * math.exp(-scale))
    assert cnt_loss(onehot.double(), onehot.double(), scale).item() == pytest.approx(expected, rel=1e-12)
    assert cnt_loss(onehot, onehot, 100.0).item() < 1e-6
    # a wrong pairing (audio of the next anchor) is heavily penalised
    shifted = onehot.reshape(p, p).roll(1, dims=0).reshape(b, n, k, p)
    assert cnt_loss(shifted, onehot, 100.0).item() > 50


def test_cnt_duplicate_classes_are_negatives_unless_text_ids_say_otherwise():
    # 2 MoMs × 2 components × 2 sources, only 4 distinct classes: each class appears twice in the batch.
    b, n, k = 2, 2, 2
    classes = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3]).reshape(b, n, k)
    emb = torch.eye(4)[classes]  # perfect audio = its prompt's class embedding
    # eq. 3 as written: the duplicate's column ties with the positive -> log 2 per direction per anchor
    assert cnt_loss(emb, emb, 100.0).item() == pytest.approx(n * math.log(2), rel=1e-5)
    assert cnt_loss(emb, emb, 100.0, text_ids=classes).item() < 1e-6


def test_cnt_gradients_flow_to_the_audio_embeddings_and_match_finite_differences():
    g = torch.Generator().manual_seed(0)
    audio = torch.randn(2, 2, 2, 5, generator=g, dtype=torch.float64, requires_grad=True)
    text = torch.randn(2, 2, 2, 5, generator=g, dtype=torch.float64)
    valid = torch.tensor([[[True, True], [True, False]], [[True, True], [True, True]]])
    assert torch.autograd.gradcheck(lambda a: cnt_loss(a, text, 3.0, valid), (audio,))
    cnt_loss(audio, text, 3.0, valid).backward()
    assert audio.grad[valid].abs().sum() > 0
    assert torch.all(audio.grad[~valid] == 0)  # a padded slot gets no gradient


def test_cnt_with_no_valid_source_is_a_differentiable_zero():
    audio = torch.randn(1, 2, 2, 4, requires_grad=True)
    loss = cnt_loss(audio, torch.randn(1, 2, 2, 4), 10.0, torch.zeros(1, 2, 2, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0 and torch.all(audio.grad == 0)


def test_reconstruction_losses_gradients_match_finite_differences():
    g = torch.Generator().manual_seed(1)
    pred = torch.rand(2, 2, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    comp = torch.rand(2, 2, 4, generator=g, dtype=torch.float64) * 3
    w = magnitude_weight(comp)
    valid = torch.tensor([[[1.0, 1.0, 0.0], [1.0, 0.5, 0.5]], [[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: crl_loss(p, comp, valid, w), (pred,))
    assert torch.autograd.gradcheck(lambda p: url_loss(p[:, :, 0], comp, w), (pred,))


# ---------------------------------------------------------------------------------------------- TWL, SSL, weight


def test_twl_and_ssl_weights():
    cnt, crl, url = torch.tensor(2.0), torch.tensor(0.3), torch.tensor(0.05)
    assert twl_loss(cnt, crl, url).item() == pytest.approx(0.1 * 2.0 + 5 * 0.3 + 10 * 0.05)  # Table 9a
    assert twl_loss(None, None, url, gamma=1.0).item() == pytest.approx(0.05)  # L_URL-only ablation
    assert ssl_loss(torch.tensor(0.2), torch.tensor(1.5)).item() == pytest.approx(5 * 0.2 + 1.5)  # Table 9d
    with pytest.raises(ValueError):
        twl_loss(None, None, None)


def test_magnitude_weight_values():
    x = torch.tensor([0.0, 1e-4, math.e - 1, 1e6])
    w = magnitude_weight(x)
    assert w.tolist() == pytest.approx([1e-3, 1e-3, 1.0, 10.0], rel=1e-5)


# ------------------------------------------------------------------------------------------- DDP negatives


def test_gather_with_grad_is_identity_without_distributed():
    x = torch.randn(3, 4, requires_grad=True)
    assert gather_with_grad(x) is x


_WORKER = textwrap.dedent("""
    import os, sys, torch, torch.distributed as dist, torch.multiprocessing as mp
    from bimodal.losses import cnt_loss, gather_with_grad

    def run(rank, world, store, out):
        torch.set_num_threads(1)
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
        g = torch.Generator().manual_seed(0)
        audio = torch.randn(3, 2, 2, 6, generator=g, dtype=torch.float64)
        text = torch.randn(3, 2, 2, 6, generator=g, dtype=torch.float64)
        valid = torch.rand(3, 2, 2, generator=g) > 0.2
        lo, hi = [(0, 1), (1, 3)][rank]  # uneven local batches: 1 and 2 MoMs
        theta = torch.ones(6, dtype=torch.float64, requires_grad=True)  # a "parameter" every rank shares
        local = audio[lo:hi].clone().requires_grad_(True)
        emb = local * theta
        loss = cnt_loss(gather_with_grad(emb), gather_with_grad(text[lo:hi]), 5.0, gather_with_grad(valid[lo:hi]))
        loss.backward()
        theta_grad = theta.grad.clone()
        dist.all_reduce(theta_grad)  # what DDP does to parameter gradients, then / world
        torch.save({"loss": loss.detach(), "local_grad": local.grad / world, "theta_grad": theta_grad / world,
                    "lo": lo, "hi": hi}, f"{out}/rank{rank}.pt")
        dist.destroy_process_group()

    if __name__ == "__main__":
        mp.spawn(run, args=(2, sys.argv[1], sys.argv[2]), nprocs=2)
""")


@pytest.mark.slow
def test_gather_with_grad_two_gloo_processes_match_one_process_on_the_combined_batch(tmp_path: Path):
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    res = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "store"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    g = torch.Generator().manual_seed(0)
    audio = torch.randn(3, 2, 2, 6, generator=g, dtype=torch.float64, requires_grad=True)
    text = torch.randn(3, 2, 2, 6, generator=g, dtype=torch.float64)
    valid = torch.rand(3, 2, 2, generator=g) > 0.2
    theta = torch.ones(6, dtype=torch.float64, requires_grad=True)
    loss = cnt_loss(audio * theta, text, 5.0, valid)
    loss.backward()
    for rank in range(2):
        r = torch.load(tmp_path / f"rank{rank}.pt")
        assert r["loss"].item() == pytest.approx(loss.item(), abs=1e-12)
        # every rank's loss reaches each slice (summed in backward), DDP averages over ranks: together exact
        torch.testing.assert_close(r["local_grad"], audio.grad[r["lo"] : r["hi"]], atol=1e-12, rtol=0)
        torch.testing.assert_close(r["theta_grad"], theta.grad, atol=1e-12, rtol=0)
