"""bimodal: weakly-supervised audio separation via bi-modal semantic similarity (ICLR 2024), runnable on a CPU."""

import os as _os

# laion_clap loads tokenizers from the model hub at import time and hangs for minutes without a network; we never
# download anything, so every entry point runs offline.
_os.environ.setdefault("HF_HUB_OFFLINE", "1")
_os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
_os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# BIMODAL_HANG_DUMP="<seconds>:<file>": every <seconds>, append every thread's stack to <file>. The notebook tests
# set it for their kernels, so a kernel that hangs in CI leaves its stack behind (a kernel's stderr is not shown).
if _os.environ.get("BIMODAL_HANG_DUMP"):
    import faulthandler as _faulthandler

    _seconds, _path = _os.environ["BIMODAL_HANG_DUMP"].split(":", 1)
    _hang_file = open(_path, "a")  # kept open for the process's lifetime: faulthandler writes to its descriptor
    _faulthandler.dump_traceback_later(float(_seconds), repeat=True, file=_hang_file)

__version__ = "0.1.0"
