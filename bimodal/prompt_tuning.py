"""Prompt tuning of the L_CNT teacher (Table 15, Appendix G.8): learnable text prompts for the joint embedding's
text side, fitted contrastively on a few single-source training clips per class with the embedding frozen, then
used in place of the template prompts' text embeddings wherever L_CNT scores a prediction.

The paper does not say how its learnable prompts enter CLAP's text tower. Here: CoOp (Zhou et al. 2022) context
vectors. For each class the surrogate's frozen all-MiniLM-L6-v2 reads ``[CLS] v_1 … v_L <class name> [SEP]``, where
v_1..v_L ∈ R^384 are shared learned vectors in the word-embedding space (replacing the template's "The sound of"),
the class name and the special tokens keep their frozen word embeddings; the token states are mean-pooled and
projected by the surrogate's frozen text head, as a template prompt is. The vectors are fitted by cross-entropy of
each training frame's audio embedding against the C class embeddings (logit scale = the embedding's own 1/τ), the
audio→text direction of the contrastive loss; only the vectors train. Implemented for the surrogate backend.

The template prompts still condition the U-Net (its cross-attention reads the template's token states): the tuned
prompts change only the teacher's text embeddings in L_CNT, as the paper tunes CLAP for the supervision signal.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from bimodal.config import Config, ConfigError

INIT_STD = 0.02  # CoOp's random initialisation of the context vectors


class SoftPrompt(nn.Module):
    """L learned context vectors [L, 384] before each class name, read by the surrogate's frozen text tower. The
    embedding is held outside the module's parameters: `parameters()` are the context vectors only."""

    def __init__(self, embedding, classes: list[str], length: int, seed: int = 0):
        super().__init__()
        from bimodal.embedding import SurrogateEmbedding

        if not isinstance(embedding, SurrogateEmbedding):
            raise ConfigError(
                "config field 'train.cnt_prompt_length': prompt tuning is implemented for "
                "embedding.backend=surrogate only (not for LAION-CLAP's RoBERTa text tower)"
            )
        if length < 1:
            raise ValueError(f"SoftPrompt: length must be >= 1, got {length}")
        self._embedding = (embedding,)  # a tuple, so nn.Module does not register its weights as ours
        self.classes = list(classes)
        text = embedding.text_encoder
        width = text.width
        gen = torch.Generator().manual_seed(int(seed))
        self.ctx = nn.Parameter(torch.randn(length, width, generator=gen) * INIT_STD)
        tok = text.tokenizer
        names = [tok(c, add_special_tokens=False)["input_ids"] for c in self.classes]
        longest = max(len(n) for n in names)
        # per class: [CLS] (ctx slots) name [SEP] pad…, as word ids; the ctx slots are filled in forward()
        ids = torch.full((len(names), 1 + length + longest + 1), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros(ids.shape, dtype=torch.bool)
        for i, n in enumerate(names):
            row = [tok.cls_token_id] + [tok.pad_token_id] * length + n + [tok.sep_token_id]
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = True
        self.register_buffer("ids", ids, persistent=False)
        self.register_buffer("mask", mask, persistent=False)

    @property
    def embedding(self):
        return self._embedding[0]

    def forward(self) -> torch.Tensor:
        """-> [C, D] L2-normalised text embeddings of the C classes (differentiable w.r.t. the context vectors)."""
        bert = self.embedding.text_encoder.model
        words = bert.get_input_embeddings()(self.ids.to(self.ctx.device))  # [C, S, 384], frozen
        L = self.ctx.shape[0]
        ctx = self.ctx.unsqueeze(0).expand(words.shape[0], -1, -1).to(words.dtype)
        inputs = torch.cat([words[:, :1], ctx, words[:, 1 + L :]], dim=1)
        mask = self.mask.to(inputs.device)
        states = bert(
            inputs_embeds=inputs, attention_mask=mask.long(), token_type_ids=torch.zeros_like(self.ids)
        ).last_hidden_state
        return self.embedding.project_text(states, mask)


def training_frames(manifest: pd.DataFrame, cfg: Config, clips_per_class: int) -> tuple[torch.Tensor, list[str]]:
    """Overlapping frames (data.segment_samples long, hop half of that) of the first `clips_per_class` single-source
    training clips of each class (by path order; fewer if the split has fewer, with a warning). -> (waves [M, T],
    class of each frame)."""
    from bimodal.datasets.mixtures import frames_at_rate, read_segment

    d = cfg.data
    rows = manifest[manifest["split"] == "train"]
    T, hop = d.segment_samples, max(1, d.segment_samples // 2)
    waves, labels = [], []
    for cls, group in sorted(rows.groupby("cls")):
        paths = sorted(group["path"])[:clips_per_class]
        if len(paths) < clips_per_class:
            warnings.warn(
                f"prompt tuning: class {cls!r} has {len(paths)} training clips, fewer than "
                f"train.cnt_prompt_clips={clips_per_class}; using {len(paths)}",
                stacklevel=2,
            )
        for path in paths:
            n = frames_at_rate(path, d.sample_rate)
            for start in range(0, max(1, n - T + 1), hop):
                waves.append(read_segment(path, start, T, d.sample_rate))
                labels.append(cls)
    return torch.from_numpy(np.stack(waves)), labels


def fit_prompt(
    embedding,
    waves: torch.Tensor,
    sample_rate: int,
    labels: list[str],
    classes: list[str],
    length: int,
    *,
    steps: int,
    lr: float,
    seed: int = 0,
) -> tuple[SoftPrompt, list[float]]:
    """Fit a SoftPrompt on audio frames waves [M, T] at `sample_rate` with classes `labels` (each among
    `classes`): Adam on the context vectors only, full batch, `steps` steps of cross-entropy(logit_scale ·
    cos(audio, class texts)). Returns the prompt and the loss of every step."""
    prompt = SoftPrompt(embedding, classes, length, seed=seed).to(embedding.device)
    with torch.no_grad():
        audio = embedding.embed_audio(waves.to(embedding.device), sample_rate)  # [M, D], frozen
    target = torch.tensor([classes.index(c) for c in labels], device=audio.device)
    opt = torch.optim.Adam(prompt.parameters(), lr=lr)
    history = []
    for _ in range(steps):
        loss = F.cross_entropy(embedding.logit_scale * audio @ prompt().T, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append(float(loss.detach()))
    return prompt, history


def tuned_text_embeddings(prompt: SoftPrompt) -> dict[str, torch.Tensor]:
    """The template prompt of each class ("The sound of <class>", what the batches carry) -> its tuned text
    embedding [D] (no gradient: the teacher is frozen again once tuned)."""
    from bimodal.datasets.labels import single_prompt

    with torch.no_grad():
        emb = prompt()
    return {single_prompt(c): emb[i].detach() for i, c in enumerate(prompt.classes)}


def prompts_for_run(cfg: Config, manifest: pd.DataFrame, embedding, run_dir: Path | None) -> dict[str, torch.Tensor]:
    """The tuned text embeddings a run's L_CNT uses: fitted once on the run's data and seed, kept in
    <run_dir>/prompts.pt (read back when the run resumes)."""
    from bimodal.datasets.labels import CLASSES

    t = cfg.train
    if cfg.embedding.backend != "surrogate":
        raise ConfigError(
            "config field 'train.cnt_prompt_length': prompt tuning is implemented for embedding.backend=surrogate "
            f"only (got {cfg.embedding.backend!r}; LAION-CLAP's RoBERTa text tower takes no soft prompts here)"
        )
    path = run_dir / "prompts.pt" if run_dir is not None else None
    if path is not None and path.exists():
        saved = torch.load(path, map_location=embedding.device, weights_only=True)
        return saved["embeddings"]
    waves, labels = training_frames(manifest, cfg, t.cnt_prompt_clips)
    classes = [c for c in CLASSES if c in set(labels)]
    prompt, history = fit_prompt(
        embedding,
        waves,
        cfg.data.sample_rate,
        labels,
        classes,
        t.cnt_prompt_length,
        steps=t.cnt_prompt_steps,
        lr=t.cnt_prompt_lr,
        seed=t.seed,
    )
    tuned = tuned_text_embeddings(prompt)
    if path is not None:
        from bimodal.utils import atomic_torch_save

        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"embeddings": tuned, "context": prompt.ctx.detach().cpu(), "loss": history, "frames": len(labels)}
        atomic_torch_save(record, path)
    return tuned
