"""LAION-CLAP backend of :class:`bimodal.embedding.JointEmbedding`, for users who have the real weights.

Loads a **local** LAION-CLAP checkpoint (e.g. ``music_audioset_epoch_15_esc_90.14.pt``, HTSAT-base + RoBERTa, the one
the authors' code uses) and a **local** roberta-base tokenizer folder; it never downloads anything.

Pitfalls of ``laion_clap`` 1.1.7 handled here (facts from the issue, checked against the installed package):

- ``import laion_clap`` runs ``hook.py`` -> ``training/data.py``, which loads three tokenizers from the model hub at
  import time. We never import the top-level package: we import only its model package ``clap_module`` (the name
  ``laion_clap/__init__.py`` itself puts on ``sys.path``), which builds models without touching the hub.
- ``CLAP.__init__`` calls ``RobertaModel.from_pretrained('roberta-base')``. We build the RoBERTa from a
  ``RobertaConfig`` instead (the checkpoint overwrites every weight anyway): the ``config.json`` of the tokenizer
  folder when it has one (a roberta-base snapshot does), otherwise roberta-base's published sizes.
- ``factory.load_state_dict`` deletes ``text_branch.embeddings.position_ids`` without checking it exists; our loader
  drops it only when present and not expected by the model.
- transformers 5.x returns a silent 5-token placeholder tokenizer offline: we check for roberta-base's 50,265 entries
  and fail loudly otherwise (pyproject pins transformers < 5 too).

Audio path as in the paper (Appendix E.2) and the authors' code: resample the prediction to 48 kHz with torchaudio,
fill to 10 s as laion-clap's ``repeatpad`` does (repeat ⌊480000/T⌋ times, zero-pad the rest), keep gradients. Longer
inputs are centre-cropped to 10 s (laion-clap crops at random; a frozen loss must be deterministic).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from copy import deepcopy
from pathlib import Path
from unittest import mock

import torch
import torch.nn.functional as F

from bimodal.audio import resample
from bimodal.embedding import JointEmbedding

ROBERTA_VOCAB = 50265  # entries of the roberta-base tokenizer (50,261 BPE tokens + 4 specials); CLAP's text vocab
CLAP_RATE = 48000
CLAP_SAMPLES = 480000  # 10 s at 48 kHz: the length LAION-CLAP was trained on
CONTEXT = 77  # tokens per prompt, as the authors' datasets tokenize (padding='max_length', max_length=77)

# roberta-base's published config (https://huggingface.co/roberta-base/blob/main/config.json), used when the
# tokenizer folder has no config.json.
ROBERTA_BASE = dict(
    vocab_size=50265,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    hidden_act="gelu",
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
    max_position_embeddings=514,
    type_vocab_size=1,
    initializer_range=0.02,
    layer_norm_eps=1e-5,
    bos_token_id=0,
    pad_token_id=1,
    eos_token_id=2,
)


def import_clap_module():
    """laion_clap's model package without running ``laion_clap/__init__`` (which loads tokenizers from the hub)."""
    if os.environ.get("HF_HUB_OFFLINE") != "1" or os.environ.get("TRANSFORMERS_OFFLINE") != "1":
        # bimodal/__init__ sets both; someone overrode them. Importing transformers pieces online may hang here.
        raise RuntimeError("the LAION-CLAP backend runs offline only: set HF_HUB_OFFLINE=1 and TRANSFORMERS_OFFLINE=1")
    if "clap_module" in sys.modules:
        return sys.modules["clap_module"]
    spec = importlib.util.find_spec("laion_clap")  # locates the package without executing its __init__
    if spec is None or spec.origin is None:
        raise ImportError(
            "embedding.backend 'laion_clap' needs the laion-clap package: "
            "pip install 'laion-clap==1.1.7' (or the 'clap' extra of bimodal)"
        )
    folder = str(Path(spec.origin).parent)
    if folder not in sys.path:
        sys.path.append(folder)  # exactly what laion_clap/__init__ does, so `clap_module` is the same module
    return importlib.import_module("clap_module")


def load_roberta_tokenizer(folder: str | Path, expected_vocab: int = ROBERTA_VOCAB):
    """The slow RobertaTokenizer (as the authors' code) from a local folder with vocab.json and merges.txt."""
    from transformers import RobertaTokenizer

    if not str(folder):
        raise FileNotFoundError(
            "config field 'embedding.tokenizer' is empty: point it at a local roberta-base "
            "tokenizer folder (vocab.json, merges.txt)"
        )
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"embedding.tokenizer: tokenizer folder {folder} does not exist")
    for name in ("vocab.json", "merges.txt"):
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"embedding.tokenizer: {folder / name} is missing (a roberta-base tokenizer "
                f"folder holds vocab.json and merges.txt)"
            )
    tok = RobertaTokenizer.from_pretrained(str(folder), local_files_only=True)
    if len(tok) != expected_vocab:
        raise ValueError(
            f"embedding.tokenizer: {folder} gives a tokenizer with {len(tok)} entries, expected "
            f"roberta-base's {expected_vocab}; a wrong folder or a placeholder tokenizer (transformers "
            f"5.x returns a silent 5-token one offline) would make every prompt look alike"
        )
    return tok


def roberta_config(tokenizer_folder: str | Path | None):
    from transformers import RobertaConfig

    cfg_file = Path(tokenizer_folder) / "config.json" if tokenizer_folder else None
    if cfg_file is not None and cfg_file.is_file():
        return RobertaConfig.from_pretrained(str(cfg_file.parent), local_files_only=True)
    return RobertaConfig(**ROBERTA_BASE)


def build_clap(audio_model: str = "HTSAT-base", text_config=None):
    """A LAION-CLAP model (``clap_module.model.CLAP``, no fusion, RoBERTa text tower) with random weights."""
    cm = import_clap_module()
    from clap_module.factory import _MODEL_CONFIGS
    from transformers import RobertaModel

    if audio_model not in _MODEL_CONFIGS or not audio_model.startswith("HTSAT"):
        raise ValueError(
            f"config field 'embedding.audio_model': {audio_model!r} is not a LAION-CLAP HTSAT model; "
            f"choose one of {', '.join(k for k in _MODEL_CONFIGS if k.startswith('HTSAT'))}"
        )
    text_config = text_config if text_config is not None else roberta_config(None)
    model_cfg = deepcopy(_MODEL_CONFIGS[audio_model])
    model_cfg["text_cfg"]["model_type"] = "roberta"
    model_cfg.update(enable_fusion=False, fusion_type="None")

    class _OfflineRoberta:  # stands in for transformers.RobertaModel inside CLAP.__init__ only
        @staticmethod
        def from_pretrained(*_args, **_kwargs):
            return RobertaModel(text_config)

    with mock.patch.object(cm.model, "RobertaModel", _OfflineRoberta):
        return cm.model.CLAP(**model_cfg)


def load_clap_state_dict(path: str | Path, model: torch.nn.Module) -> None:
    """Load a LAION-CLAP checkpoint file into `model` (strict), naming the file in every error."""
    path = Path(path)
    if not str(path) or not path.is_file():
        raise FileNotFoundError(
            f"embedding.checkpoint: LAION-CLAP checkpoint {path} does not exist (download e.g. "
            f"music_audioset_epoch_15_esc_90.14.pt from huggingface.co/lukewys/laion_clap "
            f"on a machine with internet and point the field at it)"
        )
    try:
        # weights_only=False: LAION checkpoints carry training metadata besides tensors; this is the user's own
        # local file (laion_clap's loader does the same).
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ValueError(f"embedding.checkpoint: {path} is not a readable torch checkpoint ({exc})") from None
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not state:
        raise ValueError(f"embedding.checkpoint: {path} holds no state_dict")
    if next(iter(state)).startswith("module."):  # saved from DistributedDataParallel
        state = {k[len("module.") :]: v for k, v in state.items()}
    expected = model.state_dict()
    for key in [k for k in state if k.endswith("embeddings.position_ids") and k not in expected]:
        del state[key]  # a buffer older transformers saved; ≥ 4.31 no longer persist it
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    bad_shape = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or bad_shape:
        raise ValueError(
            f"embedding.checkpoint: {path} does not fit this LAION-CLAP model (check "
            f"embedding.audio_model and the RoBERTa config): {len(missing)} missing keys "
            f"{missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}, {len(bad_shape)} with "
            f"another shape {bad_shape[:3]}"
        )
    model.load_state_dict(state, strict=True)


def repeatpad(wave: torch.Tensor, length: int = CLAP_SAMPLES) -> torch.Tensor:
    """laion-clap's ``repeatpad`` on a batch, differentiable: [B, T] -> [B, length].

    Repeat ⌊length/T⌋ times, zero-pad the rest; longer inputs are centre-cropped (deterministic, unlike laion-clap's
    random crop)."""
    T = wave.shape[-1]
    if T > length:
        start = (T - length) // 2
        return wave[..., start : start + length]
    if T < length:
        wave = wave.repeat(1, length // T)
        wave = F.pad(wave, (0, length - wave.shape[-1]))
    return wave


class LaionClapEmbedding(JointEmbedding):
    """Frozen LAION-CLAP: pooled embeddings from the projection heads (512-d, L2-normalised), RoBERTa
    ``last_hidden_state`` token states [B, 77, 768] for cross-attention, ``logit_scale = exp(logit_scale_a)``."""

    native_rate = CLAP_RATE

    def __init__(
        self,
        checkpoint: str | Path | None,
        tokenizer: str | Path,
        audio_model: str = "HTSAT-base",
        *,
        expected_vocab: int = ROBERTA_VOCAB,
    ):
        super().__init__()
        self.tokenizer = load_roberta_tokenizer(tokenizer, expected_vocab)
        self.clap = build_clap(audio_model, roberta_config(tokenizer))
        if checkpoint is not None:  # None only for tests of the random-weight model
            load_clap_state_dict(checkpoint, self.clap)
        self.embed_dim = int(self.clap.joint_embed_shape)
        self.token_dim = int(self.clap.text_branch.config.hidden_size)
        self.freeze()

    @property
    def logit_scale(self) -> float:
        # audio→text is the direction the contrastive loss scores; LAION clamps it to ≤ 100 while training
        return float(self.clap.logit_scale_a.detach().exp())

    def _encode_text(self, prompts: list[str], full_context: bool = True):
        # RoBERTa at its full context always (the authors' setting; this backend is for GPUs, not the CPU path)
        batch = self.tokenizer(prompts, padding="max_length", truncation=True, max_length=CONTEXT, return_tensors="pt")
        device = self.clap.logit_scale_a.device
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        out = self.clap.text_branch(input_ids=ids, attention_mask=mask)
        pooled = F.normalize(self.clap.text_projection(out["pooler_output"]), dim=-1)
        return pooled, out["last_hidden_state"], mask.bool()

    def _encode_audio(self, wave: torch.Tensor, sample_rate: int) -> torch.Tensor:
        x = repeatpad(resample(wave, sample_rate, CLAP_RATE))  # [B, 480000] at 48 kHz
        feats = self.clap.audio_branch({"waveform": x}, mixup_lambda=None, device=x.device)["embedding"]
        return F.normalize(self.clap.audio_projection(feats), dim=-1)


def write_test_tokenizer(folder: str | Path, *, vocab_entries: int = ROBERTA_VOCAB, text_layers: int = 1) -> Path:
    """A synthetic roberta-style tokenizer folder plus a tiny RoBERTa config.json, for offline tests and benchmarks
    of this backend with random weights (no real roberta-base files are available here).

    The vocabulary has the 4 specials, the 256 byte-level symbols (so every prompt tokenizes, one token per
    character, no merges), fillers up to `vocab_entries` and ``<mask>``; the config keeps CLAP's 768-wide text
    states but one layer and a 512-entry embedding table (only ids < 261 ever occur)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # GPT-2 / RoBERTa byte-to-unicode table: printable bytes map to themselves, the others to 256+
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = [b for b in range(256) if b not in printable]
    symbols = [chr(b) for b in printable] + [chr(256 + i) for i in range(len(extra))]
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for s in symbols:
        vocab.setdefault(s, len(vocab))
    i = 0
    while len(vocab) < vocab_entries - 1:
        vocab[f"Ġfiller{i}"] = len(vocab)
        i += 1
    vocab["<mask>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    (folder / "config.json").write_text(
        json.dumps(
            dict(
                model_type="roberta",
                vocab_size=512,
                hidden_size=768,
                num_hidden_layers=text_layers,
                num_attention_heads=2,
                intermediate_size=64,
                max_position_embeddings=CONTEXT + 3,
                type_vocab_size=1,
                pad_token_id=1,
                bos_token_id=0,
                eos_token_id=2,
                layer_norm_eps=1e-5,
            )
        )
    )
    return folder
