"""Separation supervised through a sound classifier instead of the joint embedding (Table 1's last block):

- **timbre_concurrent** / **timbre_pretrained** — "Proposed (w/ Timbre Classifier)": L_TWL (eq. 6) with L_CNT
  replaced by L_CLS, the multi-label binary cross-entropy of a timbre classifier on each single-source prediction
  f(M_n, "The sound of c") against the one-hot label c. The classifier has the architecture of the surrogate's
  audio tower (bimodal.embedding.LogMelCNN, as the paper uses the CLAP audio encoder's) with C = number of classes
  outputs, and learns from the mixtures' labels only (multi-hot labels of each component mixture and of each MoM):
  concurrently with the separator (its own BCE term, its weights not moved by the separator's L_CLS), or
  pretrained on the same training mixtures before the separator trains, then frozen.
- **weak_sup** — Weak-Sup (Pishdadian et al. 2020): no reconstruction of known mixtures. The MoM is queried with
  each of its sources' class prompts; a pretrained, frozen classifier must recognise class c (and only c) in the
  answer to c (α·L_CLS), and the answers must add up to the MoM (β·mixture consistency, the L_CRL distance).

The weights α, β, γ are eq. 6's (train.alpha / beta / gamma), L_CLS taking L_CNT's α.
"""

from __future__ import annotations

import hashlib
import json

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bimodal import losses as L
from bimodal.baselines.base import BaselineMethod
from bimodal.model import Separator


def class_list(cfg) -> list[str]:
    """The training classes of the run's dataset, sorted (the classifier's output order)."""
    from bimodal.datasets.manifest import load_manifest

    manifest = load_manifest(cfg.data)
    return sorted(manifest.loc[manifest["split"] == "train", "cls"].unique().tolist())


def classification_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Multi-label BCE: logits [..., C], labels [..., C] in {0, 1} → scalar (mean over items, summed over classes,
    so one wrong class costs the same whatever C is)."""
    if logits.shape != labels.shape:
        raise ValueError(f"classification_loss: logits {tuple(logits.shape)} and labels {tuple(labels.shape)} differ")
    per_class = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), reduction="none")
    return per_class.reshape(-1, logits.shape[-1]).sum(-1).mean()


class ClassifierSeparator(Separator):
    """The conditional Separator plus a timbre classifier (wave [B, T] → logits [B, C]) that the engine's optimiser
    sees (concurrent) or that stays frozen in eval mode (pretrained). Separator.forward is unchanged."""

    def __init__(self, cfg, cond_dim: int, classes: list[str], arch: dict, sample_rate: int, frozen: bool):
        super().__init__(cfg, cond_dim)
        from bimodal.embedding import LogMelCNN

        self.classes = list(classes)
        self.frozen = bool(frozen)
        self.classifier = LogMelCNN(
            len(self.classes),
            sample_rate=sample_rate,
            n_mels=arch["n_mels"],
            channels=tuple(arch["channels"]),
            hidden=arch["hidden"],
            pool=arch["pool"],
        )
        if self.frozen:
            self.classifier.requires_grad_(False)
            self.classifier.eval()  # and train() keeps it so

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen:
            self.classifier.eval()
        return self

    def classify(self, wave: Tensor, *, update_classifier: bool) -> Tensor:
        """wave [B, T] → logits [B, C]. update_classifier=False scores the separator's estimates: the gradient
        reaches the input only, and a training-mode BatchNorm updates copies of its statistics."""
        if update_classifier or self.frozen:
            return self.classifier(wave)
        params = {k: v.detach() for k, v in self.classifier.named_parameters()}
        buffers = {k: v.clone() for k, v in self.classifier.named_buffers()}
        return torch.func.functional_call(self.classifier, {**params, **buffers}, (wave,))


def _labels(classes: list[str], names: list[list[str]], device) -> Tensor:
    """names: rows of class names → multi-hot [rows, C]."""
    index = {c: i for i, c in enumerate(classes)}
    out = torch.zeros(len(names), len(classes), device=device)
    for r, row in enumerate(names):
        for c in row:
            out[r, index[c]] = 1.0
    return out


def _classes_of(prompts: list[str]) -> list[str]:
    from bimodal.datasets.labels import single_prompt

    prefix = single_prompt("")
    if not all(p.startswith(prefix) for p in prompts):
        raise ValueError(f"classifier baselines: single-source prompts must read {prefix!r} + class")
    return [p[len(prefix) :] for p in prompts]


def mixture_label_batch(
    sources: Tensor, source_prompts: list[list[list[str]]], classes: list[str]
) -> tuple[Tensor, Tensor]:
    """The classifier's training data from a batch of MoMs, mixtures' labels only. sources [B, N, K, T] and their
    prompts B × N × K → waves [B·N + B, T] (the component mixtures, then the MoMs) and multi-hot labels
    [B·N + B, C]; the single sources themselves are never shown to the classifier."""
    B, N, K, T = sources.shape
    names = [_classes_of(source_prompts[b][n]) for b in range(B) for n in range(N)]
    moms = [[c for n in range(N) for c in names[b * N + n]] for b in range(B)]
    waves = torch.cat([sources.sum(2).reshape(B * N, T), sources.sum((1, 2))])
    return waves, _labels(classes, names + moms, waves.device)


def pretrain_classifier(cfg, model: ClassifierSeparator) -> dict:
    """Train the classifier on the training mixtures' labels (the separator's training data and budget: epochs ×
    train_items_per_epoch MoMs, batch_size, Adam at train.lr), cached under runs/classifiers/ by what determines it.
    Returns a summary {"steps", "final_loss", "cache"}."""
    from bimodal.datasets.manifest import load_manifest
    from bimodal.datasets.mixtures import MixtureDataset, collate_mixtures
    from bimodal.utils import atomic_torch_save, runs_root

    d, t = cfg.data, cfg.train
    key = json.dumps(
        {
            "data": cfg.identity()["data"],
            "epochs": t.epochs,
            "batch": t.batch_size,
            "lr": t.lr,
            "seed": t.seed,
            "arch": repr(model.classifier),
            "classes": model.classes,
        },
        sort_keys=True,
    )
    cache = runs_root() / "classifiers" / f"{cfg.profile}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.pt"
    if cache.exists():
        model.classifier.load_state_dict(torch.load(cache, map_location="cpu", weights_only=True))
        return {"cache": str(cache), "steps": None, "final_loss": None}
    ds = MixtureDataset(
        d, load_manifest(d), "train", subset=d.train_subset, seed=t.seed + 7, items=d.train_items_per_epoch
    )
    clf = model.classifier
    clf.requires_grad_(True).train()
    opt = torch.optim.Adam(clf.parameters(), lr=t.lr)
    step, loss = 0, torch.zeros(())
    gen = torch.Generator().manual_seed(t.seed)
    # the global RNG (dropout here) is left as it was, so a cached classifier and a fresh one give the same run
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(t.seed)
        for epoch in range(t.epochs):
            ds.set_epoch(epoch)
            order = torch.randperm(len(ds), generator=gen).tolist()
            for start in range(0, len(order) - t.batch_size + 1, t.batch_size):
                raw = collate_mixtures([ds[i] for i in order[start : start + t.batch_size]])
                waves, labels = mixture_label_batch(raw["sources"].float(), raw["source_prompts"], model.classes)
                loss = classification_loss(clf(waves), labels)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
    clf.requires_grad_(not model.frozen)
    model.train(model.training)
    atomic_torch_save(clf.state_dict(), cache)
    return {"cache": str(cache), "steps": step, "final_loss": float(loss.detach())}


class _ClassifierMethod(BaselineMethod):
    frozen = True  # the classifier is pretrained and frozen

    def build_separator(self, cfg, embedding, *, pretrain: bool = True) -> nn.Module:
        from bimodal.embedding import DEFAULT_ARCH

        arch = {**DEFAULT_ARCH, **getattr(embedding, "arch", {})}
        model = ClassifierSeparator(
            cfg.model,
            cfg.model.cond_dim or embedding.token_dim,
            class_list(cfg),
            arch,
            cfg.data.sample_rate,
            self.frozen,
        )
        if self.frozen and pretrain:
            pretrain_classifier(cfg, model)
        return model

    def load_best(self, cfg, path, embedding) -> nn.Module:
        model = self.build_separator(cfg, embedding, pretrain=False)  # best.pt holds the classifier's weights too
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["state_dict"])
        return model

    def _cls_of_estimates(self, core: ClassifierSeparator, waves: Tensor, prompts: list[str]) -> Tensor:
        """waves [P, T] answers to the single-source prompts → L_CLS against their one-hot classes."""
        labels = _labels(core.classes, [[c] for c in _classes_of(prompts)], waves.device)
        return classification_loss(core.classify(waves, update_classifier=False), labels)


class TimbreClassifier(_ClassifierMethod):
    """L_TWL with L_CNT → L_CLS (the component mixtures' single-source predictions, Algorithm 1)."""

    def objective(self, obj, batch):
        t, core = obj.cfg.train, obj._core
        B, N, K, T = batch.sources.shape
        parts = {"url": obj.url(batch.mom, batch.components, batch.mixture_prompts)}
        rows = [batch.source_prompts[b][n] for b in range(B) for n in range(N)]
        tokens, mask = obj._tokens(rows)
        comps = batch.components.reshape(B * N, T)
        out = obj.separator(comps, tokens, mask)  # [B·N, K, ...]
        if t.loss_domain == "waveform":
            parts["crl"] = L.crl_loss(out["wave"].reshape(B, N, K, T), batch.components)
        else:
            weight = L.magnitude_weight(out["mix_mag"]).reshape(B, N, *out["mix_mag"].shape[1:])
            parts["crl"] = L.crl_loss(
                out["mag"].reshape(B, N, K, *out["mag"].shape[2:]),
                out["mix_mag"].reshape(B, N, *out["mix_mag"].shape[1:]),
                weight=weight,
            )
        parts["cls"] = self._cls_of_estimates(core, out["wave"].reshape(B * N * K, T), [p for row in rows for p in row])
        total = L.twl_loss(parts["cls"], parts["crl"], parts["url"], alpha=t.alpha, beta=t.beta, gamma=t.gamma)
        if not self.frozen:  # concurrent: the classifier learns from the mixtures' labels in the same step
            waves, labels = mixture_label_batch(batch.sources, batch.source_prompts, core.classes)
            parts["cls_train"] = classification_loss(core.classify(waves, update_classifier=True), labels)
            total = total + parts["cls_train"]
        return total, parts


class TimbreConcurrent(TimbreClassifier):
    name = "timbre_concurrent"
    frozen = False


class TimbrePretrained(TimbreClassifier):
    name = "timbre_pretrained"
    frozen = True


class WeakSup(_ClassifierMethod):
    """Weak-Sup: classify the MoM's answers to each of its N·K class prompts, and make them add up to the MoM."""

    name = "weak_sup"
    frozen = True

    def objective(self, obj, batch):
        t, core = obj.cfg.train, obj._core
        B, N, K, T = batch.sources.shape
        rows = [[p for n in range(N) for p in batch.source_prompts[b][n]] for b in range(B)]  # B × N·K
        tokens, mask = obj._tokens(rows)
        out = obj.separator(batch.mom, tokens, mask)  # [B, N·K, ...]
        parts = {
            "cls": self._cls_of_estimates(core, out["wave"].reshape(B * N * K, T), [p for row in rows for p in row])
        }
        if t.loss_domain == "waveform":
            parts["consistency"] = L.crl_loss(out["wave"].unsqueeze(1), batch.mom.unsqueeze(1))
        else:
            weight = L.magnitude_weight(out["mix_mag"]).unsqueeze(1)  # [B, 1, F, T']
            parts["consistency"] = L.crl_loss(out["mag"].unsqueeze(1), out["mix_mag"].unsqueeze(1), weight=weight)
        total = t.alpha * parts["cls"] + t.beta * parts["consistency"]
        return total, parts
