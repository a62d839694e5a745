"""Prompt tuning of the L_CNT teacher (Table 15): only the context vectors train, the frozen embedding does not
move, and the tuned prompts are what L_CNT scores against afterwards."""

import pytest
import torch

from bimodal.config import ConfigError, get_config


@pytest.fixture(scope="module")
def emb():
    from bimodal.backends import load_embedding

    return load_embedding(get_config("smoke").embedding)


def test_only_the_prompt_vectors_train_and_the_fit_lowers_its_loss(emb):
    from bimodal.prompt_tuning import SoftPrompt, fit_prompt

    classes = ["violin", "flute", "tuba"]
    gen = torch.Generator().manual_seed(0)
    waves = torch.randn(6, 4000, generator=gen) * 0.1
    labels = ["violin", "flute", "tuba"] * 2
    before = {k: v.clone() for k, v in emb.state_dict().items()}
    init = SoftPrompt(emb, classes, 4, seed=0).ctx.detach().clone()
    prompt, history = fit_prompt(emb, waves, 11025, labels, classes, 4, steps=15, lr=1e-2, seed=0)
    assert [name for name, _ in prompt.named_parameters()] == ["ctx"]  # the embedding is not the prompt's
    assert prompt.ctx.shape == (4, emb.token_dim)
    assert not torch.equal(prompt.ctx.detach(), init)
    assert all(not p.requires_grad for p in emb.parameters())
    after = emb.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert history[-1] < history[0]
    out = prompt()
    assert out.shape == (3, emb.embed_dim)
    assert torch.allclose(out.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_context_vectors_change_the_class_embeddings(emb):
    from bimodal.prompt_tuning import SoftPrompt

    prompt = SoftPrompt(emb, ["violin", "flute"], 3, seed=0)
    a = prompt().detach()
    with torch.no_grad():  # a random move (a constant shift would vanish in BERT's embedding LayerNorm)
        prompt.ctx.add_(torch.randn(prompt.ctx.shape, generator=torch.Generator().manual_seed(1)))
    b = prompt().detach()
    assert (a - b).abs().max() > 1e-3
    assert (a[0] - a[1]).abs().max() > 1e-3  # the class name still tells the classes apart


def test_l_cnt_scores_against_the_tuned_prompts(emb, tmp_path):
    from bimodal import losses as L
    from bimodal.prompt_tuning import SoftPrompt, prompts_for_run, tuned_text_embeddings
    from bimodal.train import Objective

    cfg = get_config("smoke", {"train.cnt_prompt_length": 2, "train.cnt_prompt_clips": 1})
    classes = ["violin", "flute"]
    tuned = tuned_text_embeddings(SoftPrompt(emb, classes, 2, seed=1))
    assert set(tuned) == {"The sound of violin", "The sound of flute"}
    objective = Objective(cfg, torch.nn.Identity(), emb)
    gen = torch.Generator().manual_seed(0)
    waves = torch.randn(1, 2, 1, 4000, generator=gen) * 0.1  # [B, N, K, T]
    prompts = [[["The sound of violin"], ["The sound of flute"]]]
    template = float(objective.cnt(waves, prompts))
    objective.tuned_prompts = tuned
    with_tuned = float(objective.cnt(waves, prompts))
    audio = emb.embed_audio(waves.reshape(2, -1), cfg.data.sample_rate).reshape(1, 2, 1, -1)
    text = torch.stack([tuned["The sound of violin"], tuned["The sound of flute"]]).reshape(1, 2, 1, -1)
    assert with_tuned == pytest.approx(float(L.cnt_loss(audio, text, emb.logit_scale)), rel=1e-5)
    assert abs(with_tuned - template) > 1e-4
    # a run keeps its tuned prompts in prompts.pt and reads them back when it resumes (no refit)
    (tmp_path / "prompts.pt").parent.mkdir(exist_ok=True)
    torch.save({"embeddings": tuned}, tmp_path / "prompts.pt")
    back = prompts_for_run(cfg, None, emb, tmp_path)
    assert all(torch.equal(back[k], tuned[k]) for k in tuned)


def test_prompt_fields_are_checked_and_leave_other_run_ids_alone():
    base = get_config("smoke")
    assert base.hash() == get_config("smoke", {"train.cnt_prompt_steps": 100}).hash()
    tuned = get_config("smoke", {"train.cnt_prompt_length": 8, "train.cnt_prompt_clips": 1})
    assert tuned.hash() != base.hash()
    with pytest.raises(ConfigError, match="cnt_prompt_clips"):
        get_config("smoke", {"train.cnt_prompt_length": 8})
    with pytest.raises(ConfigError, match="does not use"):
        get_config(
            "smoke",
            {"train.method": "mix_and_separate", "train.cnt_prompt_length": 8, "train.cnt_prompt_clips": 1},
        )
    clap = get_config(
        "smoke", {"embedding.backend": "laion_clap", "train.cnt_prompt_length": 8, "train.cnt_prompt_clips": 1}
    )
    from bimodal.prompt_tuning import prompts_for_run

    with pytest.raises(ConfigError, match="surrogate only"):
        prompts_for_run(clap, None, None, None)
