"""The losses of one training batch: the `Objective` that assembles L_URL, L_CRL, L_CNT, L_TWL and the
semi-supervised loss of a run's method from the separator's outputs (the engine, bimodal.train, calls it per step).

Loss domain (a deliberate choice, `train.loss_domain`): **magnitude** by default — ℓ1 between masked magnitude
spectrograms weighted by clamp(log1p(|mixture|), 1e-3, 10), as the authors' code (and Sound-of-Pixels) does; the
paper writes eqs. 2 and 5 as ℓ1 on f_θ's outputs, which is the `waveform` option. L_CNT always embeds waveforms.

Single-source branch input (`train.single_source_input`): **mom** — f_θ(MoM, T_n^k) as the authors' code does, the
default (chosen on validation: results/defaults.md) — or **component**, f_θ(M_n, T_n^k) as Algorithm 1 and eq. 5
state (a declared row of the defaults, three-way and diagnosis tables).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from bimodal import losses as L
from bimodal.baselines import registry as baselines
from bimodal.config import Config

# ----------------------------------------------------------------------------------------------------------------
# Distributed helpers (the process group itself is joined by bimodal.train.init_distributed)


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_gather_plain(x: torch.Tensor) -> torch.Tensor:
    """Concatenate an integer tensor (no gradient) from every process along dim 0, in rank order."""
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


# ----------------------------------------------------------------------------------------------------------------
# The batch and its losses


@dataclass
class Batch:
    """One training batch of mixtures-of-mixtures. sources [B, N, K, T]: single sources (scaled once by 1/(N·K));
    components [B, N, T] = Σ_k sources; mom [B, T] = Σ_n components."""

    sources: torch.Tensor
    mixture_prompts: list[list[str]]  # B × N
    source_prompts: list[list[list[str]]]  # B × N × K

    @property
    def components(self) -> torch.Tensor:
        return self.sources.sum(2)

    @property
    def mom(self) -> torch.Tensor:
        return self.sources.sum((1, 2))


def _as_batch(raw: dict, device: torch.device | str = "cpu") -> Batch:
    return Batch(raw["sources"].float().to(device), raw["mixture_prompts"], raw["source_prompts"])


class Objective:
    """Computes the losses of one batch. Holds the frozen embedding and the separator (possibly DDP-wrapped)."""

    def __init__(self, cfg: Config, separator: torch.nn.Module, embedding):
        self.cfg, self.separator, self.embedding = cfg, separator, embedding
        self.sample_rate = cfg.data.sample_rate
        self.terms = set(cfg.train.losses.split("+"))
        self._core = separator.module if hasattr(separator, "module") else separator
        # Table 15: prompt -> tuned text embedding [D] for L_CNT (bimodal.prompt_tuning); None = the embedding's own
        self.tuned_prompts: dict[str, torch.Tensor] | None = None
        # train.cnt_floor="clean": the clean sources' L_CNT (nats, bimodal.cnt_reference), set by the engine; the
        # total then weighs max(L_CNT − floor, 0). None = L_CNT as eqs. 3–4
        self.cnt_floor: float | None = None

    # -- text conditioning ------------------------------------------------------------------------------------
    def _tokens(self, prompts: list[list[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """prompts B × P -> tokens [B, P, L, Dt], mask [B, P, L] (the embedding caches per prompt)."""
        flat = [p for row in prompts for p in row]
        _, tokens, mask = self.embedding.embed_text(flat, padding_states=not self.cfg.model.ca_key_padding_mask)
        B, P = len(prompts), len(prompts[0])
        return tokens.reshape(B, P, *tokens.shape[1:]), mask.reshape(B, P, -1)

    def _pooled(self, prompts: list[str]) -> torch.Tensor:
        return self.embedding.embed_text(prompts)[0]

    def _prompt_id(self, prompt: str) -> int:
        # ids must agree across DDP ranks: derive them from the text itself (stable across processes)
        import zlib

        return zlib.crc32(prompt.encode()) & 0x7FFFFFFF

    def _stft_mag(self, wave: torch.Tensor) -> torch.Tensor:
        return self._core.stft(wave).abs()

    # -- loss pieces -------------------------------------------------------------------------------------------
    def url(self, mom: torch.Tensor, targets: torch.Tensor, prompts: list[list[str]]) -> torch.Tensor:
        """Mix-and-separate (eq. 2): predict each of the N targets [B, N, T] of the MoM [B, T] from its prompt."""
        return self.url_and_output(mom, targets, prompts)[0]

    def url_and_output(
        self, mom: torch.Tensor, targets: torch.Tensor, prompts: list[list[str]]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`url`, also returning the separator's output (out["wave"] [B, N, T]: the N predictions)."""
        tokens, mask = self._tokens(prompts)
        out = self.separator(mom, tokens, mask)
        if self.cfg.train.loss_domain == "waveform":
            return L.url_loss(out["wave"], targets), out
        weight = L.magnitude_weight(out["mix_mag"]).unsqueeze(1)  # [B, 1, F, T']
        return L.url_loss(out["mag"], self._stft_mag(targets), weight), out

    def cnt(self, waves: torch.Tensor, prompts: list[list[list[str]]]) -> torch.Tensor:
        """L_CNT (eqs. 3–4) of single-source predictions waves [B, N, K, T] against their prompts (B × N × K)."""
        B, N, K, T = waves.shape
        audio = self.embedding.embed_audio(waves.reshape(B * N * K, T), self.sample_rate).reshape(B, N, K, -1)
        flat_prompts = [p for rows in prompts for row in rows for p in row]
        if self.tuned_prompts is not None:
            text = torch.stack([self.tuned_prompts[p] for p in flat_prompts]).to(audio).reshape(B, N, K, -1)
        else:
            text = self._pooled(flat_prompts).reshape(B, N, K, -1)
        ids = None
        if not self.cfg.train.cnt_same_prompt_negatives:  # the same prompt text -> the same id
            ids = torch.tensor([self._prompt_id(p) for p in flat_prompts], device=audio.device).reshape(B, N, K)
        if self.cfg.train.gather_negatives and _dist_info()[1] > 1:
            # every rank computes the same global loss; gather_with_grad sums the ranks' gradients of the local
            # slice, and DDP's averaging then yields the gradient of the global-batch loss
            audio, text = L.gather_with_grad(audio), L.gather_with_grad(text)
            ids = _all_gather_plain(ids) if ids is not None else None
        return L.cnt_loss(audio, text, self.embedding.logit_scale, text_ids=ids)

    def single_source(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The weak-supervision branch: predict every single source from its component mixture (or the MoM) with
        "The sound of X"; L_CRL (eq. 5) and L_CNT (eqs. 3–4)."""
        B, N, K, T = batch.sources.shape
        comps = batch.components  # [B, N, T]
        rows = [batch.source_prompts[b][n] for b in range(B) for n in range(N)]  # (B·N) × K
        tokens, mask = self._tokens(rows)  # [B·N, K, L, Dt]
        if self.cfg.train.single_source_input == "component":
            out = self.separator(comps.reshape(B * N, T), tokens, mask)  # one encoder pass per component
            mix_mag = out["mix_mag"]
        else:  # "mom": the authors' code queries the MoM with every single-source prompt
            mom = batch.mom.repeat_interleave(N, 0)
            out = self.separator(mom, tokens, mask)
            mix_mag = None
        result = {}
        if "crl" in self.terms:
            if self.cfg.train.loss_domain == "waveform":
                result["crl"] = L.crl_loss(out["wave"].reshape(B, N, K, T), comps)
            else:
                comp_mag = mix_mag if mix_mag is not None else self._stft_mag(comps.reshape(B * N, T))
                weight = L.magnitude_weight(comp_mag).reshape(B, N, *comp_mag.shape[1:])
                mags = out["mag"].reshape(B, N, K, *out["mag"].shape[2:])
                result["crl"] = L.crl_loss(mags, comp_mag.reshape(B, N, *comp_mag.shape[1:]), weight=weight)
        if "cnt" in self.terms:
            result["cnt"] = self.cnt(out["wave"].reshape(B, N, K, T), batch.source_prompts)
        return result

    def __call__(self, batch: Batch, single: Batch | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        t = self.cfg.train
        parts: dict[str, torch.Tensor] = {}
        if baselines.is_baseline(t.method):  # the baseline rows of Tables 1 and 12 (bimodal.baselines)
            total, parts = baselines.get(t.method).objective(self, batch)
        elif t.method == "supervised" and t.supervised_cnt_weight > 0:
            # Table 13: supervised L_URL + w · L_CNT, the N predictions (single sources, K = 1) scored by the frozen
            # embedding against their prompts
            parts["url"], out = self.url_and_output(batch.mom, batch.components, batch.mixture_prompts)
            B, N, T = out["wave"].shape
            parts["cnt"] = self.cnt(out["wave"].reshape(B, N, 1, T), batch.source_prompts)
            total = parts["url"] + t.supervised_cnt_weight * parts["cnt"]
        elif t.method in ("supervised", "mix_and_separate"):
            # supervised: the N components are single sources (K = 1); mix-and-separate: they are mixtures.
            parts["url"] = self.url(batch.mom, batch.components, batch.mixture_prompts)
            total = parts["url"]
        else:
            if "url" in self.terms:
                parts["url"] = self.url(batch.mom, batch.components, batch.mixture_prompts)
            if self.terms & {"cnt", "crl"}:
                parts.update(self.single_source(batch))
            zero = batch.sources.new_zeros(())
            cnt = parts.get("cnt", zero)
            if self.cnt_floor is not None and "cnt" in parts:
                cnt = torch.relu(cnt - self.cnt_floor)  # logged: the raw L_CNT (parts["cnt"])
            total = L.twl_loss(
                cnt,
                parts.get("crl", zero),
                parts.get("url", zero),
                alpha=t.alpha,
                beta=t.beta,
                gamma=t.gamma,
            )
            if t.method == "semi_supervised":
                assert single is not None
                parts["sup_url"] = self.url(single.mom, single.components, single.mixture_prompts)
                parts["twl"] = total
                total = L.ssl_loss(parts["sup_url"], total, lambda_s=t.lambda_s, lambda_u=t.lambda_u)
        logged = {k: float(v.detach()) for k, v in parts.items()}
        logged["total"] = float(total.detach())
        return total, logged
