"""The separator f_θ and its U-Net g_θ (issue 5): shapes, masks, gradients, conditioning, checkpoints, CLI."""

import dataclasses
import sys
import types
import zlib

import numpy as np
import pytest
import soundfile as sf
import torch

from bimodal.config import ConfigError, get_config
from bimodal.model import (
    TABLE7_PAPER_PARAMS_M,
    TABLE7_VARIANTS,
    CheckpointError,
    Separator,
    UNetMasker,
    count_parameters,
)
from bimodal.separate import separate_cli

DIM = 24  # token dimension of the fake embedding (the real ones use 384 / 768)


class FakeEmbedding:
    """The JointEmbedding interface with deterministic per-prompt token states (no model, no download)."""

    def __init__(self, dim: int = DIM, max_len: int = 7):
        self.token_dim, self.max_len = dim, max_len

    def embed_text(self, prompts, padding_states=False):
        tokens = torch.zeros(len(prompts), self.max_len, self.token_dim)
        mask = torch.zeros(len(prompts), self.max_len, dtype=torch.bool)
        for i, p in enumerate(prompts):
            n = min(len(p.split()) + 2, self.max_len)
            g = torch.Generator().manual_seed(zlib.crc32(p.encode()))
            tokens[i, :n] = torch.randn(n, self.token_dim, generator=g)
            mask[i, :n] = True
        return tokens.mean(1), tokens, mask

    def embed_audio(self, wave, sample_rate):
        return torch.zeros(wave.shape[0], self.token_dim)


def smoke_separator(**overrides) -> Separator:
    cfg = get_config("smoke", {f"model.{k}": v for k, v in overrides.items()})
    return Separator(cfg.model, DIM)


def prompts_batch(emb, rows):
    _, tok, mask = emb.embed_text([p for r in rows for p in r])
    B, P = len(rows), len(rows[0])
    return tok.reshape(B, P, *tok.shape[1:]), mask.reshape(B, P, -1)


ROWS = [
    ["the sound of violin", "the sound of cello", "the sound mixture of violin and cello"],
    ["the sound of flute", "the sound of piano", "the sound of flute"],
]


@pytest.mark.parametrize("variant", list(TABLE7_VARIANTS))
def test_table7_variants_give_masks_of_the_right_shape(variant):
    cfg = get_config("smoke", TABLE7_VARIANTS[variant])
    sep = Separator(cfg.model, DIM)
    T = cfg.data.segment_samples
    tok, mask = prompts_batch(FakeEmbedding(), ROWS)
    out = sep(torch.randn(2, T), tok, mask)
    F_, frames = cfg.model.n_fft // 2 + 1, T // cfg.model.hop + 1
    assert out["wave"].shape == (2, 3, T)
    assert out["mask"].shape == out["mag"].shape == (2, 3, F_, frames)
    assert out["mix_mag"].shape == (2, F_, frames) and out["mix_spec"].is_complex()
    assert 0.0 <= out["mask"].min() and out["mask"].max() <= 1.0
    assert torch.allclose(out["mag"], out["mix_mag"].unsqueeze(1) * out["mask"])
    assert torch.isfinite(out["wave"]).all()


def test_block_counts_follow_the_config():
    ca2 = smoke_separator(res_blocks=2, sa_blocks=0, ca_blocks=2).masker
    assert [b.cross for b in ca2.modulation[0].blocks] == [True, True]
    assert len(ca2.enc_res[0]) == 2 and len(ca2.dec_res[0]) == 2
    both2 = smoke_separator(sa_blocks=2, ca_blocks=2).masker
    assert [b.cross for b in both2.modulation[0].blocks] == [False, True, False, True]  # (SA+CA)×2
    vanilla = smoke_separator(res_blocks=0, sa_blocks=0, ca_blocks=0).masker
    assert len(vanilla.enc_res[0]) == 0 and len(vanilla.modulation[0].blocks) == 0


def test_paper_size_parameter_counts_match_table7():
    """Counted on the meta device (no memory); the full model must land within 10 % of the paper's 81.4 M."""
    for name, overrides in TABLE7_VARIANTS.items():
        with torch.device("meta"):
            n = count_parameters(UNetMasker(get_config("paper", overrides).model, 768))
        paper = TABLE7_PAPER_PARAMS_M[name] * 1e6
        assert abs(n - paper) <= 0.10 * paper, (name, n, paper)
    with torch.device("meta"):
        full = Separator(get_config("paper").model, 768).parameter_summary()
    assert abs(full["total"] - 81.4e6) <= 0.10 * 81.4e6
    assert full["total"] == full["encoder"] + full["attention"] + full["decoder"] + full["gate"]


@pytest.mark.parametrize("T", [8191, 8192, 5000])
def test_all_ones_mask_returns_the_input(T):
    sep = smoke_separator()
    sep.masker.forward = lambda mag, tokens, mask: torch.ones(mag.shape[0], tokens.shape[1], *mag.shape[1:])
    wave = torch.randn(2, T) * 0.3
    tok, mask = prompts_batch(FakeEmbedding(), [r[:2] for r in ROWS])
    out = sep(wave, tok, mask)["wave"]
    assert (out - wave.unsqueeze(1)).abs().max() < 1e-4
    assert (sep.istft(sep.stft(wave), T) - wave).abs().max() < 1e-4


def test_stft_settings_that_cannot_invert_the_signal_end_are_rejected():
    # 510/256: the last samples sit at the very edge of one Hann window (weight ~1e-5 or 0) -> iSTFT blows up there.
    with pytest.raises(ConfigError, match=r"model\.hop"):
        get_config("smoke", {"model.n_fft": 510})
    with pytest.raises(ConfigError, match=r"model\.hop"):
        Separator(dataclasses.replace(get_config("smoke").model, n_fft=510), DIM)


@pytest.mark.parametrize("down_path", [False, True])
def test_gradients_reach_every_trainable_block(down_path):
    sep = smoke_separator(attn_on_down_path=down_path, modulator_levels=2)
    tok, mask = prompts_batch(FakeEmbedding(), ROWS)
    out = sep(torch.randn(2, 8191), tok, mask)
    (out["mag"].mean() + out["wave"].pow(2).mean()).backward()
    for name, p in sep.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_changing_the_prompt_changes_the_output():
    sep = smoke_separator().eval()
    emb = FakeEmbedding()
    wave = torch.randn(1, 8191)
    tok, mask = prompts_batch(emb, [["the sound of violin", "the sound of cello", "the sound of violin"]])
    with torch.no_grad():
        m = sep(wave, tok, mask)["mask"][0]
    assert (m[0] - m[1]).abs().max() > 1e-4
    assert torch.equal(m[0], m[2])  # same prompt, same mixture: same mask


@pytest.mark.parametrize("variant, down_path", [("full", False), ("full", True), ("sa", False), ("vanilla", False)])
def test_prompt_sharing_equals_separate_queries(variant, down_path):
    """Running the unconditioned levels once per mixture for P prompts equals querying each prompt alone."""
    # Two Modulator levels, so that in down-path mode a deeper encoder level sees conditioned features.
    cfg = get_config(
        "smoke", {**TABLE7_VARIANTS[variant], "model.attn_on_down_path": down_path, "model.modulator_levels": 2}
    )
    sep = Separator(cfg.model, DIM).eval()
    tok, mask = prompts_batch(FakeEmbedding(), ROWS)
    wave = torch.randn(2, 8191)
    with torch.no_grad():
        joint = sep(wave, tok, mask)["mask"]
        alone = torch.cat([sep(wave, tok[:, j : j + 1], mask[:, j : j + 1])["mask"] for j in range(3)], 1)
    assert torch.allclose(joint, alone, atol=1e-5)


def test_head_runs_once_per_mixture():
    sep = smoke_separator()
    seen = {}

    def record(name):
        def hook(module, inputs, output):
            seen[name] = inputs[0].shape[0]

        return hook

    sep.masker.down[0].register_forward_hook(record("head"))
    ca = next(b for b in sep.masker.modulation[0].blocks if b.cross)
    ca.register_forward_hook(record("ca"))
    tok, mask = prompts_batch(FakeEmbedding(), ROWS)
    sep(torch.randn(2, 8191), tok, mask)
    assert seen == {"head": 2, "ca": 6}


def test_cross_attention_ignores_padded_tokens_only_when_masked():
    wave = torch.randn(1, 8191)
    tok, mask = prompts_batch(FakeEmbedding(), [["the sound of violin"]])
    assert not mask.all()
    noisy = tok.clone()
    noisy[~mask] = torch.randn(int((~mask).sum()), DIM)  # change only the padded positions
    for use_mask, same in [(True, True), (False, False)]:
        torch.manual_seed(0)
        sep = smoke_separator(ca_key_padding_mask=use_mask).eval()
        with torch.no_grad():
            a, b = sep(wave, tok, mask)["mask"], sep(wave, noisy, mask)["mask"]
        assert torch.allclose(a, b, atol=1e-6) == same


def test_bad_inputs_raise_clear_errors():
    sep = smoke_separator()
    tok, mask = prompts_batch(FakeEmbedding(), [["the sound of violin"]])
    with pytest.raises(ValueError, match="no real token"):
        sep(torch.randn(1, 8191), tok, torch.zeros_like(mask))
    with pytest.raises(ValueError, match="Dc=24"):
        sep(torch.randn(1, 8191), torch.randn(1, 1, 7, 10), mask)
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        sep(torch.randn(8191), tok, mask)


def test_separate_shapes_mode_and_chunking():
    sep = smoke_separator()
    emb = FakeEmbedding()
    sep.train()
    one = sep.separate(torch.randn(6000), "the sound of violin", emb)
    assert one.shape == (1, 6000) and sep.training  # the caller's mode is restored
    many = sep.separate(torch.randn(2, 6000), ["the sound of violin", "the sound of cello"], emb)
    assert many.shape == (2, 2, 6000)
    # Chunked overlap-add with an identity mask must give the input back (the cross-fade weights normalise).
    sep.masker.forward = lambda mag, tokens, mask: torch.ones(mag.shape[0], tokens.shape[1], *mag.shape[1:])
    wave = torch.randn(12000) * 0.3
    chunked = sep.separate(wave, ["a", "b"], emb, chunk_samples=4096)
    assert chunked.shape == (2, 12000) and (chunked - wave).abs().max() < 1e-4


def test_save_load_round_trip_is_exact(tmp_path):
    cfg = get_config("smoke")
    sep = Separator(cfg.model, DIM)
    tok, mask = prompts_batch(FakeEmbedding(), ROWS)
    sep(torch.randn(2, 8191), tok, mask)  # move the BatchNorm running statistics away from their init
    path = tmp_path / "sep.pt"
    sep.save(path, config=cfg.to_dict(), extra={"epoch": 3, "val": {"sdr": np.float64(1.5)}, "dir": tmp_path})
    loaded = Separator.from_pretrained(path)
    assert loaded.cfg == sep.cfg and loaded.cond_dim == DIM
    assert loaded.saved_config == cfg.to_dict()
    assert loaded.saved_extra == {"epoch": 3, "val": {"sdr": 1.5}, "dir": str(tmp_path)}
    for (k, a), (_, b) in zip(sep.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    sep.eval(), loaded.eval()
    wave = torch.randn(2, 8191)
    with torch.no_grad():
        assert torch.equal(sep(wave, tok, mask)["wave"], loaded(wave, tok, mask)["wave"])


def test_load_errors_name_the_file_and_key(tmp_path):
    with pytest.raises(CheckpointError, match="missing.pt"):
        Separator.from_pretrained(tmp_path / "missing.pt")
    sep = smoke_separator()
    path = tmp_path / "sep.pt"
    sep.save(path)
    ckpt = torch.load(path, weights_only=True)
    ckpt["model_config"]["base_channels"] = 8  # the stored config no longer builds these weights
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=r"sep\.pt.*mismatch at 'masker\.down\.0\.conv\.weight'"):
        Separator.from_pretrained(path)
    ckpt["model_config"] = dataclasses.asdict(sep.cfg)
    ckpt["state_dict"]["masker.extra.weight"] = torch.zeros(1)
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="unexpected weight 'masker.extra.weight'"):
        Separator.from_pretrained(path)
    torch.save({"model": sep.state_dict()}, path)
    with pytest.raises(CheckpointError, match="not a bimodal separator checkpoint"):
        Separator.from_pretrained(path)


def test_cli_separates_a_generated_stereo_file(tmp_path, monkeypatch):
    cfg = get_config("smoke")
    ckpt = tmp_path / "best.pt"
    Separator(cfg.model, DIM).save(ckpt, config=cfg.to_dict())
    asked = {}

    def load_embedding(ecfg):
        asked["backend"] = ecfg.backend
        return FakeEmbedding()

    monkeypatch.setitem(sys.modules, "bimodal.backends", types.SimpleNamespace(load_embedding=load_embedding))
    sr, n = 22050, 30000
    t = np.arange(n) / sr
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t)], 1)
    mix = tmp_path / "mixture.wav"
    sf.write(mix, stereo.astype(np.float32), sr)
    out = tmp_path / "out" / "violin.wav"
    from bimodal.cli import main

    assert main(["separate", str(mix), "the sound of violin", "-o", str(out), "--checkpoint", str(ckpt)]) == 0
    data, out_sr = sf.read(out, always_2d=True)
    assert out_sr == sr and data.shape == (n, 1) and np.abs(data).max() > 0
    assert asked == {"backend": cfg.embedding.backend}
    assert separate_cli([str(tmp_path / "nope.wav"), "x", "-o", str(out), "--checkpoint", str(ckpt)]) == 1
