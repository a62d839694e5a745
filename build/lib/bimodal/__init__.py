"""bimodal: weakly-supervised audio separation via bi-modal semantic similarity (ICLR 2024), runnable on a CPU."""
import os as _os

# laion_clap loads tokenizers from the model hub at import time and hangs for minutes without a network; we never
# download anything, so every entry point runs offline.
_os.environ.setdefault("HF_HUB_OFFLINE", "1")
_os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
_os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

__version__ = "0.1.0"
