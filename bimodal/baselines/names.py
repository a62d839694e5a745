"""The baseline `train.method` names and their cross-field config checks. Imports nothing of the package
(bimodal.config calls it; the implementations are in bimodal.baselines.registry)."""

from __future__ import annotations

METHODS = ("pit", "mixpit", "mixit", "timbre_concurrent", "timbre_pretrained", "weak_sup", "lass_net")


def config_problem(cfg) -> str | None:
    """Why a baseline config does not fit (a message naming the field), or None."""
    t, d = cfg.train, cfg.data
    if t.method == "pit" and d.k_sources != 1:
        return (
            f"config field 'data.k_sources' must be 1 for train.method 'pit' (PIT is supervised: it trains on "
            f"single sources), got {d.k_sources}"
        )
    if t.method in ("mixpit", "mixit", "timbre_concurrent", "timbre_pretrained", "weak_sup") and d.k_sources < 2:
        return (
            f"config field 'data.k_sources' must be ≥ 2 for train.method {t.method!r} (it trains on mixtures "
            f"of mixtures), got {d.k_sources}"
        )
    if t.method == "mixit" and d.n_mix != 2 and d.k_sources * d.n_mix > 8:
        return (
            f"config field 'data.n_mix' ({d.n_mix}) × k_sources ({d.k_sources}): MixIT searches the mixing "
            f"matrices of n_mix·k_sources outputs; keep it ≤ 8"
        )
    return None
