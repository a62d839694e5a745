"""The baseline rows of Tables 1 and 12 as declared methods of the training engine (issue 18).

Each baseline is a `train.method` value. The engine (bimodal.train) asks this package, through `get(method)`, for
the separator to build, the loss of a batch, the test-time estimates and how to reload best.pt; everything else
(data, optimiser, schedule, validation, BSS-Eval on the shipped test sets, run folders) is the engine's own, so a
baseline differs from the proposed method only where its paper does. docs/baselines.md says how each differs from
the cited implementation.

This module imports nothing heavy: config validation uses `METHODS` and `validate`; the implementations are
imported on first use.
"""
from __future__ import annotations

import importlib

# train.method -> (module, class) of its implementation
METHODS: dict[str, tuple[str, str]] = {
    "pit": ("bimodal.baselines.pit", "PIT"),
    "mixpit": ("bimodal.baselines.pit", "MixPIT"),
    "mixit": ("bimodal.baselines.mixit", "MixIT"),
}


def is_baseline(method: str) -> bool:
    return method in METHODS


def get(method: str):
    """The implementation object of a baseline `train.method` (KeyError names the known ones)."""
    if method not in METHODS:
        raise KeyError(f"{method!r} is not a baseline method; known: {', '.join(METHODS)}")
    module, name = METHODS[method]
    return getattr(importlib.import_module(module), name)()


def validate(cfg) -> None:
    """Cross-field checks of a baseline config; raises ConfigError naming the field."""
    from bimodal.config import ConfigError

    t, d = cfg.train, cfg.data
    if t.method == "pit" and d.k_sources != 1:
        raise ConfigError(f"config field 'data.k_sources' must be 1 for train.method 'pit' (PIT is supervised: "
                          f"it trains on single sources), got {d.k_sources}")
    if t.method in ("mixpit", "mixit") and d.k_sources < 2:
        raise ConfigError(f"config field 'data.k_sources' must be ≥ 2 for train.method {t.method!r} (it trains on "
                          f"mixtures of mixtures; the single-source row is 'pit'), got {d.k_sources}")
    if t.method == "mixit" and d.n_mix != 2 and d.k_sources * d.n_mix > 8:
        raise ConfigError(f"config field 'data.n_mix' ({d.n_mix}) × k_sources ({d.k_sources}): MixIT searches "
                          f"n_mix^(n_mix·k_sources) mixing matrices; keep n_mix·k_sources ≤ 8")
