"""Table 7's parameter counts: each architecture variant (bimodal.model.TABLE7_VARIANTS) counted at the paper size
beside the paper's "Total Params (M)", and at the size this repository trains it (a profile's model.*), written to
results/table7_params.csv by code (never typed)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

# Token widths of the text towers the U-Net's cross-attention reads: LAION-CLAP's RoBERTa (the paper's) and the
# offline surrogate's all-MiniLM-L6-v2 (config.ModelConfig.cond_dim = 0 follows the backend).
CLAP_TOKEN_DIM = 768
SURROGATE_TOKEN_DIM = 384


def _count(profile: str, overrides: dict, cond_dim: int) -> int:
    from bimodal.config import get_config
    from bimodal.model import UNetMasker, count_parameters

    with torch.device("meta"):  # count without allocating (the paper-size variants are up to 120 M parameters)
        return count_parameters(UNetMasker(get_config(profile, overrides).model, cond_dim))


def table7_parameter_counts(trained_profile: str = "quick") -> pd.DataFrame:
    """One row per Table 7 variant: its res/sa/ca blocks, the paper's count (M), ours at the paper size (cond_dim
    768, as the paper's CLAP text tower), their ratio, and ours at the quick size and at `trained_profile`'s size
    with the surrogate's 384-wide token states (what the runs of those profiles train)."""
    from bimodal.model import TABLE7_PAPER_PARAMS_M, TABLE7_VARIANTS

    rows = []
    for name, over in TABLE7_VARIANTS.items():
        paper_size = _count("paper", over, CLAP_TOKEN_DIM)
        rows.append(
            {
                "variant": name,
                "res_blocks": over["model.res_blocks"],
                "sa_blocks": over["model.sa_blocks"],
                "ca_blocks": over["model.ca_blocks"],
                "paper_params_M": TABLE7_PAPER_PARAMS_M[name],
                "ours_paper_size_params_M": round(paper_size / 1e6, 2),
                "ours_over_paper": round(paper_size / 1e6 / TABLE7_PAPER_PARAMS_M[name], 3),
                **{
                    f"ours_{profile}_size_params": _count(profile, over, SURROGATE_TOKEN_DIM)
                    for profile in dict.fromkeys(("quick", trained_profile))
                },
            }
        )
    return pd.DataFrame(rows)


def write_table7_parameter_counts(profile: str = "quick") -> Path:
    """results/table7_params.csv (results_root(profile)): the counts of `table7_parameter_counts(profile)`."""
    from bimodal.utils import results_root

    out = results_root(profile) / "table7_params.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    table7_parameter_counts(profile).to_csv(out, index=False)
    return out
