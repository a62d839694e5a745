"""Evaluation metrics against mir_eval (the BSS-Eval v3 reference), hand formulas and the silence rule."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from bimodal.metrics import bss_eval, evaluate_mixture, is_silent_source, si_sdr, summarize, summarize_seeds

SR = 11025


def _tone_source(rng, f0: float, seconds: float) -> np.ndarray:
    """A harmonic tone with a slow amplitude envelope, like a sustained instrument note."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi)) / h for h in range(1, 6))
    return x * (0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.3, 2.0) * t + rng.uniform(0, 6)))


def _realistic_case(seed: int, n_src: int, seconds: float):
    """References: tones + a little noise; estimates: leakage from the other sources, a short filter, noise."""
    rng = np.random.default_rng(seed)
    refs = np.stack(
        [
            _tone_source(rng, f0, seconds) + 0.02 * rng.standard_normal(int(seconds * SR))
            for f0 in rng.uniform(110, 660, n_src)
        ]
    )
    mix = np.roll(np.eye(n_src), 1, axis=1) * rng.uniform(0.05, 0.4)
    ests = refs + mix @ refs + rng.uniform(0.01, 0.2) * rng.standard_normal(refs.shape)
    ests = np.stack([np.convolve(e, [1.0, rng.uniform(-0.5, 0.5), 0.1])[: refs.shape[1]] for e in ests])
    return refs, ests


def _mir_eval(refs, ests):
    import mir_eval.separation

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # bss_eval_sources is deprecated in mir_eval 0.8, not wrong
        sdr, sir, sar, _ = mir_eval.separation.bss_eval_sources(refs, ests, compute_permutation=False)
    return {"sdr": sdr, "sir": sir, "sar": sar}


@pytest.mark.parametrize("seed,n_src,seconds", [(0, 2, 1.0), (1, 2, 3.0), (2, 3, 1.5)])
def test_bss_eval_matches_mir_eval(seed, n_src, seconds):
    refs, ests = _realistic_case(seed, n_src, seconds)
    ours, ref = bss_eval(refs, ests), _mir_eval(refs, ests)
    for k in ("sdr", "sir", "sar"):
        assert ours[k].shape == (n_src,) and ours[k].dtype == np.float64
        np.testing.assert_allclose(ours[k], ref[k], atol=0.01, rtol=0, err_msg=k)
    # the sources really differ in quality, so an index mix-up (a permutation search) would show
    assert np.ptp(ref["sdr"]) > 0.1


def test_bss_eval_on_random_signals_and_tensor_input():
    rng = np.random.default_rng(5)
    refs = rng.standard_normal((2, SR))
    ests = refs + 0.7 * rng.standard_normal((2, SR)) + 0.3 * refs[::-1]
    ref = _mir_eval(refs, ests)
    # float32 tensors come in, float64 numpy is computed
    ours = bss_eval(torch.from_numpy(refs).float(), torch.from_numpy(ests).float())
    for k in ("sdr", "sir", "sar"):
        np.testing.assert_allclose(ours[k], ref[k], atol=0.01, rtol=0, err_msg=k)


def test_torch_mir_eval_on_cpu_float64_matches_mir_eval():
    import torch_mir_eval

    refs, ests = _realistic_case(7, 2, 0.5)
    sdr, sir, sar, _ = torch_mir_eval.bss_eval_sources(
        torch.from_numpy(refs), torch.from_numpy(ests), compute_permutation=False
    )
    ref = _mir_eval(refs, ests)
    for k, v in (("sdr", sdr), ("sir", sir), ("sar", sar)):
        np.testing.assert_allclose(v.double().numpy(), ref[k], atol=0.01, rtol=0, err_msg=k)


def test_bss_eval_refuses_bad_input_with_a_clear_error():
    refs, ests = _realistic_case(0, 2, 0.2)
    with pytest.raises(ValueError, match="shape"):
        bss_eval(refs, ests[:, :-1])
    ests[1] = 0.0
    with pytest.raises(ValueError, match=r"estimate source\(s\) \[1\]"):
        bss_eval(refs, ests)


def test_si_sdr_hand_value_and_scale_invariance():
    rng = np.random.default_rng(0)
    s = rng.standard_normal(4000)
    noise = rng.standard_normal(4000)
    noise -= (noise @ s) / (s @ s) * s  # orthogonal to s
    noise *= np.linalg.norm(s) / np.linalg.norm(noise) / math.sqrt(10)  # ‖s‖² / ‖noise‖² = 10 -> 10 dB
    assert si_sdr(s, s + noise)[0] == pytest.approx(10.0, abs=1e-9)
    assert si_sdr(s, 0.3 * (s + noise))[0] == pytest.approx(10.0, abs=1e-9)  # gain does not matter
    refs, ests = _realistic_case(3, 2, 0.5)
    alpha = (ests * refs).sum(1) / (refs * refs).sum(1)
    target = alpha[:, None] * refs
    hand = 10 * np.log10((target**2).sum(1) / ((ests - target) ** 2).sum(1))
    np.testing.assert_allclose(si_sdr(refs, ests), hand, atol=1e-9, rtol=0)


def test_silence_rule_skips_the_mixture():
    refs, ests = _realistic_case(0, 2, 0.5)
    mixture = refs.sum(0)
    assert evaluate_mixture(refs, ests, mixture) is not None
    quiet = ests.copy()
    quiet[1] = 1e-5 / quiet.shape[1]  # Σ|x| = 1e-5 exactly: silent by the SoP rule (≤)
    assert is_silent_source(quiet).tolist() == [False, True]
    assert evaluate_mixture(refs, quiet, mixture) is None
    quiet_ref = refs.copy()
    quiet_ref[0] = 0.0
    assert evaluate_mixture(quiet_ref, ests, mixture) is None
    audible = ests.copy()
    audible[1] = 2e-5 / audible.shape[1]  # just above the threshold: evaluated
    assert not is_silent_source(audible).any()
    assert evaluate_mixture(refs, audible, mixture) is not None


def test_evaluate_mixture_sdri_sign_and_means():
    refs, good = _realistic_case(4, 2, 1.0)
    mixture = refs.sum(0)
    r = evaluate_mixture(refs, good, mixture)
    b = bss_eval(refs, good)
    assert r["sdr"] == pytest.approx(b["sdr"].mean()) and r["sar"] == pytest.approx(b["sar"].mean())
    assert r["si_sdr"] == pytest.approx(si_sdr(refs, good).mean())
    assert r["sdr_mix"] == pytest.approx(bss_eval(refs, np.stack([mixture, mixture]))["sdr"].mean())
    assert r["sdri"] == pytest.approx(r["sdr"] - r["sdr_mix"]) and r["sdri"] > 1.0
    # no separation at all: SDRi = 0
    assert evaluate_mixture(refs, np.stack([mixture, mixture]), mixture)["sdri"] == pytest.approx(0.0, abs=1e-9)
    # answering each query with the other source is worse than the mixture: SDRi < 0
    assert evaluate_mixture(refs, refs[::-1].copy(), mixture)["sdri"] < -1.0
    with pytest.raises(ValueError, match="mixture"):
        evaluate_mixture(refs, good, mixture[:-1])


def test_summarize_hand_table():
    df = pd.DataFrame({"sdr": [1.0, 2.0, 6.0], "sdri": [0.5, 0.5, 2.0], "mixture": ["a", "b", "c"]})
    s = summarize(df, skipped=2)
    assert set(s) == {"sdr", "sdri"}
    assert s["sdr"] == {"mean": 3.0, "median": 2.0, "std": pytest.approx(math.sqrt(7.0)), "n": 3, "n_skipped": 2}
    one = summarize(df.iloc[:1], skipped=0)
    assert one["sdr"]["std"] is None and one["sdr"]["mean"] == 1.0  # std of one value is undefined, JSON-safe
    with pytest.raises(ValueError, match="metric columns"):
        summarize(df[["mixture"]], skipped=0)
    seeds = summarize_seeds([summarize(df, 0), summarize(df.assign(sdr=df.sdr + 2), 1)])
    assert seeds["sdr"] == {"mean": 4.0, "std": pytest.approx(math.sqrt(2.0)), "n": 2}
