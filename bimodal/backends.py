"""The frozen joint embedding a config names: one loader over the two backends, the offline surrogate
(:mod:`bimodal.embedding`, which also holds the interface) and LAION-CLAP (:mod:`bimodal.clap`). Kept apart from
both so that neither backend module imports the other."""

from __future__ import annotations

from bimodal.clap import LaionClapEmbedding
from bimodal.config import EmbeddingConfig
from bimodal.embedding import JointEmbedding, SurrogateEmbedding, surrogate_path

_LOADED: dict[tuple, JointEmbedding] = {}


def load_embedding(cfg: EmbeddingConfig) -> JointEmbedding:
    """The frozen embedding a config names, loaded once per process (later calls return the same object)."""
    key = (cfg.backend, cfg.checkpoint, cfg.tokenizer, cfg.audio_model)
    if key in _LOADED:
        return _LOADED[key]
    if cfg.backend == "surrogate":
        model: JointEmbedding = SurrogateEmbedding.from_checkpoint(surrogate_path(cfg.checkpoint))
    elif cfg.backend == "laion_clap":
        if not cfg.checkpoint:
            raise FileNotFoundError(
                "config field 'embedding.checkpoint' is empty: the laion_clap backend needs a "
                "local LAION-CLAP checkpoint (e.g. music_audioset_epoch_15_esc_90.14.pt)"
            )
        model = LaionClapEmbedding(cfg.checkpoint, cfg.tokenizer, cfg.audio_model)
    else:
        raise ValueError(f"config field 'embedding.backend': unknown backend {cfg.backend!r}")
    _LOADED[key] = model
    return model
