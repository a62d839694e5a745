"""The joint embedding: both backends against one interface, checkpoints, errors, and the surrogate's training and
zero-shot evaluation on hand-built cases. LAION-CLAP runs offline with random weights (HTSAT-tiny, a one-layer
RoBERTa, a synthetic 50,265-entry tokenizer)."""

import math
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bimodal.clap import LaionClapEmbedding, load_roberta_tokenizer, repeatpad, write_test_tokenizer
from bimodal.config import EmbeddingConfig, get_config
from bimodal.backends import load_embedding
from bimodal.embedding import ASSET, JointEmbedding, SurrogateEmbedding
from bimodal.surrogate.batches import BatchMaker
from bimodal.surrogate.cards import write_card
from bimodal.surrogate.corpus import Corpus
from bimodal.surrogate.objectives import additivity_loss, sigmoid_multilabel, soft_infonce
from bimodal.surrogate.replay import replay, training_chain
from bimodal.surrogate.training import train_surrogate
from bimodal.surrogate.zeroshot import write_results, zero_shot_eval
from bimodal.utils import file_sha256, seed_everything

PROMPTS = ["The sound of violin", "The sound of cello", "The sound mixture of piano and flute"]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    return write_test_tokenizer(tmp_path_factory.mktemp("roberta_tok"))


@pytest.fixture(scope="module")
def surrogate():
    torch.manual_seed(0)
    return SurrogateEmbedding().freeze()


@pytest.fixture(scope="module")
def laion(tokenizer_dir):
    torch.manual_seed(0)
    return LaionClapEmbedding(None, tokenizer_dir, "HTSAT-tiny")


@pytest.fixture(params=["surrogate", "laion"])
def backend(request):
    return request.getfixturevalue(request.param)


def _tone(n, sr=11025, f0=440.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    return (0.3 * np.sin(2 * np.pi * f0 * t) + 0.01 * rng.standard_normal(n)).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# the interface, for both backends


def test_text_shapes_norm_mask(backend):
    pooled, tokens, mask = backend.embed_text(PROMPTS)
    assert pooled.shape == (3, backend.embed_dim)
    assert tokens.shape[0] == 3 and tokens.shape[2] == backend.token_dim and tokens.shape[1] == mask.shape[1] == 77
    assert mask.dtype == torch.bool
    assert torch.allclose(pooled.norm(dim=-1), torch.ones(3), atol=1e-5)
    # real tokens come first and are fewer for the shorter prompt; the longest prompt has the most
    lengths = mask.sum(1)
    assert bool((lengths > 2).all()) and lengths[2] > lengths[0]
    for row, n in zip(mask, lengths):
        assert bool(row[:n].all()) and not bool(row[n:].any())
    assert not torch.allclose(pooled[0], pooled[1])


def test_audio_shapes_norm_any_rate(backend):
    for sr, n in ((11025, 11025), (16000, 8000)):
        with torch.no_grad():
            emb = backend.embed_audio(torch.from_numpy(np.stack([_tone(n, sr), _tone(n, sr, 220.0, 1)])), sr)
        assert emb.shape == (2, backend.embed_dim)
        assert torch.allclose(emb.norm(dim=-1), torch.ones(2), atol=1e-5)
        assert torch.isfinite(emb).all()


def test_gradient_reaches_wave_and_no_parameter(backend):
    backend.train()  # a parent's .train() must not unfreeze it
    assert not backend.training and not any(m.training for m in backend.modules())
    assert not any(p.requires_grad for p in backend.parameters())
    wave = torch.from_numpy(_tone(11025)[None]).requires_grad_(True)
    text = backend.embed_text(["The sound of violin"])[0]
    (backend.embed_audio(wave, 11025) @ text.T).sum().backward()
    assert wave.grad is not None and torch.isfinite(wave.grad).all() and wave.grad.abs().sum() > 0
    assert all(p.grad is None for p in backend.parameters())


def test_deterministic(backend):
    wave = torch.from_numpy(np.stack([_tone(6000), _tone(6000, f0=300.0)]))
    with torch.no_grad():
        a, b = backend.embed_audio(wave, 11025), backend.embed_audio(wave, 11025)
    assert torch.equal(a, b)
    backend._text_cache.clear()
    first = backend.embed_text(PROMPTS)[0]
    backend._text_cache.clear()
    assert torch.equal(first, backend.embed_text(PROMPTS[::-1])[0].flip(0))  # batch order cannot change a bit


def test_text_cache(backend, monkeypatch):
    backend._text_cache.clear()
    calls = []
    original = backend._encode_text
    monkeypatch.setattr(
        backend, "_encode_text", lambda prompts, **kw: calls.append(list(prompts)) or original(prompts, **kw)
    )
    a = backend.embed_text(["The sound of violin", "The sound of cello", "The sound of violin"])
    b = backend.embed_text(["The sound of cello", "The sound of violin"])
    # each prompt encoded once (duplicates too), one at a time so its embedding never depends on its batch
    assert calls == [["The sound of violin"], ["The sound of cello"]]
    assert torch.equal(a[0][0], a[0][2]) and torch.equal(a[0][1], b[0][0]) and torch.equal(a[1][0], b[1][1])
    assert not a[0].requires_grad


def test_bad_inputs(backend):
    assert math.isfinite(backend.logit_scale) and backend.logit_scale > 0
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        backend.embed_audio(torch.zeros(100), 11025)
    with pytest.raises(ValueError, match="list of strings"):
        backend.embed_text("The sound of violin")


# ---------------------------------------------------------------------------------------------------------------
# the surrogate


def test_surrogate_checkpoint_round_trip(surrogate, tmp_path):
    wave = torch.from_numpy(np.stack([_tone(9000), _tone(9000, f0=660.0)]))
    with torch.no_grad():
        ref = surrogate.embed_audio(wave, 11025)
    surrogate.save(tmp_path / "full.pt", {"note": "x"}, half=False)
    back = SurrogateEmbedding.from_checkpoint(tmp_path / "full.pt")
    assert back.metadata == {"note": "x"} and not any(p.requires_grad for p in back.parameters())
    with torch.no_grad():
        assert torch.equal(back.embed_audio(wave, 11025), ref)
    assert torch.allclose(back.embed_text(PROMPTS)[0], surrogate.embed_text(PROMPTS)[0], atol=1e-6)
    surrogate.save(tmp_path / "half.pt")  # the shipped format: float16 weights
    with torch.no_grad():
        half = SurrogateEmbedding.from_checkpoint(tmp_path / "half.pt").embed_audio(wave, 11025)
    assert (half - ref).abs().max() < 5e-3


def test_surrogate_is_gain_invariant(surrogate):
    wave = torch.from_numpy(np.stack([_tone(11025), _tone(11025, f0=300.0, seed=3)]))
    with torch.no_grad():
        assert (surrogate.audio.logmel(wave) - surrogate.audio.logmel(wave * 0.05)).abs().max() < 1e-4
        a, b = surrogate.embed_audio(wave, 11025), surrogate.embed_audio(wave * 0.05, 11025)
        assert (a * b).sum(1).min() > 0.9999
        # and the front-end is not trivially constant: another sound moves it
        other = torch.from_numpy(np.stack([_tone(11025, f0=1500.0), _tone(11025)]))
        assert (surrogate.audio.logmel(wave) - surrogate.audio.logmel(other))[0].abs().max() > 1.0


def test_missing_files_are_named(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_embedding(EmbeddingConfig(checkpoint=str(missing)))
    with pytest.raises(FileNotFoundError, match="embedding.checkpoint"):
        load_embedding(EmbeddingConfig(backend="laion_clap"))
    with pytest.raises(FileNotFoundError, match="no_tokenizer"):
        load_roberta_tokenizer(tmp_path / "no_tokenizer")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        SurrogateEmbedding.from_checkpoint(tmp_path / "junk.pt")


def test_shipped_surrogate_loads_and_separates_prompts():
    assert ASSET.is_file(), f"{ASSET} is not shipped"
    emb = load_embedding(EmbeddingConfig())
    assert isinstance(emb, SurrogateEmbedding) and emb is load_embedding(EmbeddingConfig())  # cached per process
    assert emb.embed_dim == emb.metadata["config"]["embed_dim"] and emb.token_dim == 384
    assert 1.0 < emb.logit_scale <= 100.0
    classes = ["violin", "cello", "piano", "flute", "drum", "trumpet", "erhu", "pipa"]
    pooled = emb.embed_text([f"The sound of {c}" for c in classes])[0]
    # raw MiniLM puts these prompts at ~0.6 cosine of each other; the trained projection must spread them
    off = (pooled @ pooled.T)[~torch.eye(len(classes), dtype=torch.bool)]
    assert off.max() < 0.9
    assert emb.metadata["selected"]["val_top1_21"] > 0.5  # the corpus validation score it was selected with


# ---------------------------------------------------------------------------------------------------------------
# LAION-CLAP specifics


def test_laion_import_avoids_hub_loading_package(laion):
    assert "clap_module" in sys.modules
    assert "laion_clap.training.data" not in sys.modules and "laion_clap.hook" not in sys.modules


def test_tokenizer_guard(tmp_path):
    write_test_tokenizer(tmp_path, vocab_entries=300)
    with pytest.raises(ValueError, match="50265"):
        load_roberta_tokenizer(tmp_path)


def test_repeatpad_matches_laion_rule():
    x = torch.arange(1.0, 4.0).unsqueeze(0)  # T = 3
    assert repeatpad(x, 10).tolist() == [[1, 2, 3, 1, 2, 3, 1, 2, 3, 0]]
    long = torch.arange(12.0).unsqueeze(0)
    assert repeatpad(long, 8).tolist() == [[2, 3, 4, 5, 6, 7, 8, 9]]  # centre crop, deterministic
    # 6 s at 11,025 Hz -> 285,322 samples at 48 kHz: repeated once, i.e. only zero-padded (official-code-notes §1.3)
    assert 480000 // 285322 == 1


def test_laion_checkpoint_round_trip(laion, tokenizer_dir, tmp_path):
    state = {f"module.{k}": v for k, v in laion.clap.state_dict().items()}
    state["module.text_branch.embeddings.position_ids"] = torch.arange(80).unsqueeze(0)  # as older files carry
    torch.save({"epoch": 15, "state_dict": state}, tmp_path / "clap.pt")
    torch.manual_seed(123)  # another random init, so equality can only come from the file
    back = LaionClapEmbedding(tmp_path / "clap.pt", tokenizer_dir, "HTSAT-tiny")
    wave = torch.from_numpy(_tone(8000)[None])
    with torch.no_grad():
        assert torch.allclose(back.embed_audio(wave, 11025), laion.embed_audio(wave, 11025), atol=1e-6)
    assert torch.allclose(back.embed_text(PROMPTS)[1], laion.embed_text(PROMPTS)[1], atol=1e-6)
    assert back.logit_scale == pytest.approx(laion.logit_scale)
    with pytest.raises(ValueError, match="does not fit"):
        load_clap_state = __import__("bimodal.clap", fromlist=["load_clap_state_dict"]).load_clap_state_dict
        torch.save({"state_dict": {"audio_branch.bogus": torch.zeros(1)}}, tmp_path / "bad.pt")
        load_clap_state(tmp_path / "bad.pt", back.clap)


# ---------------------------------------------------------------------------------------------------------------
# training pieces


def test_soft_infonce_matches_clip_loss_and_limits():
    torch.manual_seed(0)
    a, t = F.normalize(torch.randn(4, 8), dim=-1), F.normalize(torch.randn(4, 8), dim=-1)
    eye = torch.eye(4)
    logits = 10.0 * a @ t.T
    clip = 0.5 * (F.cross_entropy(logits, torch.arange(4)) + F.cross_entropy(logits.T, torch.arange(4)))
    assert soft_infonce(a, t, eye, torch.ones(4, dtype=torch.bool), torch.tensor(10.0)).item() == pytest.approx(
        clip.item(), rel=1e-5
    )
    # identical embeddings for everything: log U in both directions
    same = F.normalize(torch.ones(4, 8), dim=-1)
    assert soft_infonce(same, same, eye, torch.ones(4, dtype=torch.bool), torch.tensor(10.0)).item() == pytest.approx(
        math.log(4), rel=1e-5
    )
    # a 2-source item whose embedding sits between its two labels scores better than one on a third label
    text = torch.eye(3)
    target = torch.tensor([[0.5, 0.5, 0.0]])
    mid = F.normalize(torch.tensor([[1.0, 1.0, 0.0]]), dim=-1)
    off = torch.tensor([[0.0, 0.0, 1.0]])
    no = torch.zeros(1, dtype=torch.bool)
    assert soft_infonce(mid, text, target, no, torch.tensor(20.0)) < soft_infonce(
        off, text, target, no, torch.tensor(20.0)
    )


def test_sigmoid_multilabel_by_hand():
    text = torch.eye(3)
    audio = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.6, 0.8]])
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])  # item 1: a mixture of labels 1 and 2
    s, b = torch.tensor(10.0), torch.tensor(-5.0)
    sp = lambda x: math.log1p(math.exp(x))  # softplus
    by_hand = ((sp(-(10 - 5)) + sp(-5) + sp(-5)) + (sp(-5) + sp(-(6 - 5)) + sp(-(8 - 5)))) / 2
    assert sigmoid_multilabel(audio, text, targets, s, b).item() == pytest.approx(by_hand, rel=1e-6)
    # the mixture is a full positive of both labels: moving it onto the bisector of 1 and 2 lowers the loss
    mid = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2**-0.5, 2**-0.5]])
    assert sigmoid_multilabel(mid, text, targets, s, b) < sigmoid_multilabel(audio, text, targets, s, b)


def test_soft_infonce_leaves_mixtures_out_of_their_labels_text_rows():
    text = torch.eye(2)
    single_a = torch.tensor([[1.0, 0.0]])
    targets = torch.tensor([[1.0, 0.0], [0.5, 0.5]])  # item 0: a alone; item 1: a + b
    single = torch.tensor([True, False])
    scale = torch.tensor(5.0)

    def loss(mix_emb):
        return soft_infonce(torch.cat([single_a, mix_emb]), text, targets, single, scale)

    # text row a sees only item 0 (item 1 contains a: excluded), text row b has no single item: no t2a term.
    # So t2a = CE over a one-element row = 0, and the loss is half the audio→text cross-entropy, by hand:
    mix = F.normalize(torch.tensor([[1.0, 1.0]]), dim=-1)
    a2t = (
        -(
            torch.log_softmax(scale * single_a @ text.T, 1)[0, 0]
            + (0.5 * torch.log_softmax(scale * mix @ text.T, 1)).sum()
        )
        / 2
    )
    assert loss(mix).item() == pytest.approx(0.5 * a2t.item(), rel=1e-5)


def _toy_corpus(n_per=3, seed=0, n=8000):
    rng = np.random.default_rng(seed)
    waves, labels = [], []
    for lab, f0 in (("flute", 300.0), ("violin", 500.0), ("drum", 800.0)):
        for _ in range(n_per):
            waves.append(_tone(n, f0=f0 * rng.uniform(0.9, 1.1), seed=int(rng.integers(1000))))
            labels.append(lab)
    return Corpus(waves, labels, {lab: [f"The sound of {lab}", f"a {lab} playing"] for lab in set(labels)})


def test_batch_maker_targets():
    cfg = get_config("smoke", {"embedding.mix_prob": 0.25, "embedding.leak_prob": 0.2, "embedding.crop_min": 0.3})
    b = BatchMaker(_toy_corpus(), cfg.embedding, seed=1)(32)
    assert b.waves.shape[0] == 32 and 0.3 * 11025 <= b.waves.shape[1] <= 8000 and torch.isfinite(b.waves).all()
    assert b.labels == sorted(set(b.labels)) and set(b.labels) <= {"flute", "violin", "drum"}
    assert b.targets.shape == (32, len(b.captions)) and torch.allclose(b.targets.sum(1), torch.ones(32))
    # the last 8 items are mixtures of two in-batch singles of different labels, half and half
    assert b.pairs.shape == (8, 2) and b.single.tolist() == [True] * 24 + [False] * 8
    for k, (i, j) in enumerate(b.pairs.tolist()):
        assert i < 24 and j < 24
        row = b.targets[24 + k]
        assert sorted(row[row > 0].tolist()) == [0.5, 0.5]
        assert row[b.targets[i].argmax()] == 0.5 and row[b.targets[j].argmax()] == 0.5


def test_additivity_loss_by_hand():
    e = F.normalize(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), dim=-1)
    e.requires_grad_(True)
    pairs = torch.tensor([[0, 1], [0, 1]])  # items 2 and 3 are mixtures of items 0 and 1
    loss = additivity_loss(e, pairs)
    assert loss.item() == pytest.approx((0.0 + 1.0) / 2, abs=1e-6)  # item 2 sits on the target, item 3 is orthogonal
    loss.backward()
    assert e.grad[:2].abs().sum() == 0 and e.grad[3].abs().sum() > 0  # the singles' side is a fixed target


def test_train_surrogate_few_steps_round_trip(tmp_path):
    cfg = get_config("smoke", {"embedding.steps": 2, "embedding.batch_size": 6, "embedding.crop_min": 0.3})
    summary = train_surrogate(
        cfg, tmp_path / "s.pt", train=_toy_corpus(), val=_toy_corpus(1, 1), evals=1, progress=False
    )
    back = SurrogateEmbedding.from_checkpoint(tmp_path / "s.pt")
    assert summary["selected"]["step"] == 2 and back.metadata["history"][0]["step"] == 2
    assert back.metadata["labels"] == ["drum", "flute", "violin"]
    # training moved the weights away from the same seeded init
    seed_everything(cfg.embedding.seed)
    fresh = SurrogateEmbedding(back.arch)
    moved = back.trained_state()["audio.head.3.weight"] - fresh.trained_state()["audio.head.3.weight"]
    assert moved.abs().max() > 0
    # the model card states the command that trained it, evaluation points and thread count included
    assert back.metadata["evals"] == 1 and back.metadata["threads"] == torch.get_num_threads()
    write_card(tmp_path / "s.pt", None, tmp_path / "CARD.md")
    card = (tmp_path / "CARD.md").read_text()
    assert "--set embedding.steps=2 --set embedding.batch_size=6 --set embedding.crop_min=0.3" in card
    assert " --evals 1`" in card and f"on {torch.get_num_threads()} CPU thread" in card


def test_train_surrogate_warm_start(tmp_path):
    base = {"embedding.steps": 2, "embedding.batch_size": 6, "embedding.crop_min": 0.3}
    kw = dict(train=_toy_corpus(), val=_toy_corpus(1, 1), evals=1, progress=False)
    train_surrogate(get_config("smoke", base), tmp_path / "a.pt", **kw)
    # a vanishing learning rate: the warm-started weights are those of a.pt, not a fresh seeded init
    cfg = get_config(
        "smoke", {**base, "embedding.steps": 1, "embedding.lr": 1e-12, "embedding.init": str(tmp_path / "a.pt")}
    )
    train_surrogate(cfg, tmp_path / "b.pt", **kw)
    a, b = (SurrogateEmbedding.from_checkpoint(tmp_path / f) for f in ("a.pt", "b.pt"))
    weights = [k for k, _ in a.named_parameters() if k in a.trained_state()]  # BatchNorm statistics do move
    assert len(weights) > 10
    for k in weights:
        assert torch.equal(a.trained_state()[k], b.trained_state()[k]), k
    init = b.metadata["init"]
    assert (
        init["file"] == "a.pt"
        and init["config"]["steps"] == 2
        and init["selected_step"] == 2
        and len(init["sha256"]) == 16
    )
    write_card(tmp_path / "b.pt", None, tmp_path / "CARD.md")
    assert "--set embedding.init=" in (card := (tmp_path / "CARD.md").read_text()) and "Warm start" in card
    # an architecture that does not fit, and a name that is neither shipped nor a path, are named
    with pytest.raises(ValueError, match="embedding.width"):
        train_surrogate(cfg.override({"embedding.width": cfg.embedding.width + 8}), tmp_path / "c.pt", **kw)
    with pytest.raises(FileNotFoundError, match="embedding.init"):
        train_surrogate(cfg.override({"embedding.init": "no_such_surrogate"}), tmp_path / "c.pt", **kw)
    assert not (tmp_path / "c.pt").exists()


def test_replay_retrains_a_warm_started_chain(tmp_path, capsys):
    base = {"embedding.steps": 2, "embedding.batch_size": 6, "embedding.crop_min": 0.3}
    kw = dict(train=_toy_corpus(), val=_toy_corpus(1, 1), progress=False)
    train_surrogate(get_config("smoke", base), tmp_path / "a.pt", evals=1, **kw)
    second = {**base, "embedding.steps": 3, "embedding.lr": 0.001, "embedding.init": str(tmp_path / "a.pt")}
    train_surrogate(get_config("smoke", second), tmp_path / "b.pt", evals=1, **kw)
    chain = training_chain(tmp_path / "b.pt")
    assert [c["file"].name for c in chain] == ["a.pt", "b.pt"]
    assert [c["config"]["steps"] for c in chain] == [2, 3] and chain[1]["config"]["lr"] == 0.001
    outs = replay(tmp_path / "b.pt", tmp_path / "replay", **kw)
    assert [o.name for o in outs] == ["stage1_a.pt", "stage2_b.pt"]
    first, last = (SurrogateEmbedding.from_checkpoint(o) for o in outs)
    # the recorded configs come back, except that stage 2 now starts from the new stage 1
    assert first.metadata["config"]["steps"] == 2 and "init" not in first.metadata
    assert last.metadata["config"]["steps"] == 3 and last.metadata["config"]["lr"] == 0.001
    assert (
        last.metadata["init"]["file"] == "stage1_a.pt" and last.metadata["init"]["sha256"] == file_sha256(outs[0])[:16]
    )
    # the CLI lists the same stages, with the overrides that made each, and trains nothing on --dry-run
    from bimodal.surrogate.cli import cli

    capsys.readouterr()  # drop what the replay printed
    assert cli(["replay", "--checkpoint", str(tmp_path / "b.pt"), "--dry-run"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 2 and "a.pt" in listed[0] and "b.pt" in listed[1]
    assert "--set embedding.lr=0.001" in listed[1] and "--set embedding.init=" in listed[1]
    # finished stages are kept: a second replay trains nothing
    stamps = [o.stat().st_mtime_ns for o in outs]
    replay(tmp_path / "b.pt", tmp_path / "replay", **kw)
    assert [o.stat().st_mtime_ns for o in outs] == stamps
    # a stage whose warm start has changed since cannot be replayed, and the error names it
    (tmp_path / "a.pt").write_bytes((tmp_path / "a.pt").read_bytes() + b"\0")
    with pytest.raises(FileNotFoundError, match="b.pt was warm-started from .*a.pt"):
        training_chain(tmp_path / "b.pt")


# ---------------------------------------------------------------------------------------------------------------
# zero-shot evaluation on a hand-built embedding


class _ToneEmbedding(JointEmbedding):
    """Class c is a sine at 200·(c+1) Hz; the audio embedding is the spectrum at those 4 frequencies, the text
    embedding of "The sound of X" the one-hot of X. So single clips are classified exactly and a mixture's top 2
    are its two classes."""

    classes = ["a", "b", "c", "d"]
    embed_dim = token_dim = 4
    native_rate = 8000

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.freeze()

    @property
    def logit_scale(self):
        return 10.0

    def _encode_text(self, prompts, full_context=True):
        pooled = torch.stack([F.one_hot(torch.tensor(self.classes.index(p.split()[-1])), 4).float() for p in prompts])
        return pooled, pooled.unsqueeze(1), torch.ones(len(prompts), 1, dtype=torch.bool)

    def _encode_audio(self, wave, sample_rate):
        spec = torch.fft.rfft(wave).abs()
        bins = [round(200 * (c + 1) * wave.shape[-1] / sample_rate) for c in range(4)]
        return F.normalize(spec[:, bins], dim=-1)


def test_zero_shot_eval_hand_built(tmp_path):
    emb = _ToneEmbedding()
    sr, n = 8000, 4000
    t = np.arange(n) / sr
    waves = [np.sin(2 * np.pi * 200 * (c + 1) * t).astype(np.float32) for c in range(4) for _ in range(2)]
    labels = [c for c in emb.classes for _ in range(2)]
    labels_wrong = labels[:-1] + ["a"]  # the last "d" clip mislabelled as "a": top-1 7/8
    result = zero_shot_eval(emb, waves, labels_wrong, sr, classes=tuple(emb.classes))
    m = result["metrics"].set_index("metric")["value"]
    assert m["top1"] == pytest.approx(7 / 8)
    assert result["confusion"][0, 3] == 1 and result["confusion"].trace() == 7
    result = zero_shot_eval(emb, waves, labels, sr, classes=tuple(emb.classes))
    m = result["metrics"].set_index("metric")
    assert m.loc["top1", "value"] == 1.0 and m.loc["mix2_both_in_top2", "value"] == 1.0
    assert m.loc["mix2_both_in_top3", "n"] == 16 and m.loc["top1", "met"] == "yes"
    # the L_CNT gap by hand: a clean tone is the one-hot of its class (cosine 1 with its prompt, 0 with 3 others);
    # (a + b) / 2 is [1, 1, 0, 0]/√2 (cosine 1/√2 with both prompts); scale 10
    s, c = 10.0, 10.0 / math.sqrt(2)
    gap = math.log(2 + 2 * math.exp(-c)) - math.log(1 + 3 * math.exp(-s))
    assert m.loc["mix2_cnt_gap_nats", "value"] == pytest.approx(gap, abs=1e-4)
    assert m.loc["mix2_cnt_gap_nats", "n"] == 32
    paths = write_results(result, get_config("smoke"), tmp_path / "r", tmp_path / "f")
    assert paths["csv"].name == "embedding_zeroshot_smoke_surrogate_1sf_600.csv" and paths["figure"].is_file()
    assert "| top1 | 100.0% | 8 |" in paths["md"].read_text()
    assert f"| mix2_cnt_gap_nats | {gap:.2f} nats | 32 |" in paths["md"].read_text()
    # every shipped surrogate gets its own files, named in the text
    named = write_results(
        result, get_config("smoke", {"embedding.checkpoint": "surrogate_2sf"}), tmp_path / "r", tmp_path / "f"
    )
    assert named["csv"].name == "embedding_zeroshot_smoke_surrogate_2sf.csv"
    assert "bimodal/assets/surrogate_2sf.pt" in named["md"].read_text()
    # so does a checkpoint file (a retrained surrogate): it never overwrites the shipped default's files
    mine = write_results(
        result,
        get_config("quick", {"embedding.checkpoint": str(tmp_path / "Stage3 surrogate.pt")}),
        tmp_path / "r",
        tmp_path / "f",
    )
    assert mine["md"].name == "embedding_zeroshot_file_stage3_surrogate.md"
    assert (
        write_results(result, get_config("quick"), tmp_path / "r", tmp_path / "f")["md"].name
        == f"embedding_zeroshot_{ASSET.stem}.md"
    )


def test_surrogate_checkpoint_names_resolve_to_shipped_assets(tmp_path):
    from bimodal.embedding import shipped_surrogates, surrogate_path

    assert surrogate_path("") == ASSET == surrogate_path("surrogate_1sf_600")  # the default, chosen on validation
    assert surrogate_path("surrogate") == ASSET.parent / "surrogate.pt" and "surrogate" in shipped_surrogates()
    assert surrogate_path(str(tmp_path / "mine.pt")) == tmp_path / "mine.pt"
    with pytest.raises(FileNotFoundError, match="embedding.checkpoint.*'no_such_surrogate'.*surrogate"):
        surrogate_path("no_such_surrogate")
    cfg = EmbeddingConfig(checkpoint="no_such_surrogate")
    with pytest.raises(FileNotFoundError, match="no_such_surrogate"):
        load_embedding(cfg)
