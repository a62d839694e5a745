"""train.method → the implementation of a baseline (the engine's only entry into this package)."""

from __future__ import annotations

import importlib

from bimodal.baselines.names import METHODS

# train.method -> (module, class) of its implementation, imported on first use
_IMPLEMENTATIONS: dict[str, tuple[str, str]] = {
    "pit": ("bimodal.baselines.pit", "PIT"),
    "mixpit": ("bimodal.baselines.pit", "MixPIT"),
    "mixit": ("bimodal.baselines.mixit", "MixIT"),
    "timbre_concurrent": ("bimodal.baselines.classifier", "TimbreConcurrent"),
    "timbre_pretrained": ("bimodal.baselines.classifier", "TimbrePretrained"),
    "weak_sup": ("bimodal.baselines.classifier", "WeakSup"),
    "lass_net": ("bimodal.baselines.lass_net", "LassNet"),
}
assert set(_IMPLEMENTATIONS) == set(METHODS)


def is_baseline(method: str) -> bool:
    return method in _IMPLEMENTATIONS


def get(method: str):
    """The implementation object of a baseline `train.method` (KeyError names the known ones)."""
    if method not in _IMPLEMENTATIONS:
        raise KeyError(f"{method!r} is not a baseline method; known: {', '.join(_IMPLEMENTATIONS)}")
    module, name = _IMPLEMENTATIONS[method]
    return getattr(importlib.import_module(module), name)()
