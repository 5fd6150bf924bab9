"""Point numba's on-disk cache at a folder keyed by our sources and the numba version.

numba's cache does not notice edits in other modules that a cached function calls (for
example the constants of :mod:`tradetower.kernel_abi`), so a stale kernel could silently
produce old results. Keying the folder on a hash of every package source avoids that.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# Everything a cached kernel can call into. Other modules (CLI, results) do not key the cache.
_KERNEL_SOURCES = (
    "tradetower/kernel_abi.py",
    "tradetower/kernel_signature.py",
    "tradetower/kernel_tools.py",
    "simulator/state.py",
    "simulator/nb/*.py",
    "strategies/**/*.py",
)
_configured = False


def source_fingerprint() -> str:
    """A short hash of the kernel sources and the numba version."""
    import numba

    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256(numba.__version__.encode())
    for pattern in _KERNEL_SOURCES:
        for path in sorted(root.glob(pattern)):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def configure_numba_cache() -> None:
    """Set numba's cache folder once, before any cached function is compiled.

    An explicit ``NUMBA_CACHE_DIR`` from the user wins. Otherwise the folder is
    ``$TRADETOWER_CACHE_DIR`` (default ``~/.cache/tradetower``) ``/numba/<fingerprint>``.
    """
    global _configured
    if _configured:
        return
    _configured = True
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    base = os.environ.get("TRADETOWER_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "tradetower",
    )
    folder = os.path.join(base, "numba", source_fingerprint())
    os.makedirs(folder, exist_ok=True)
    import numba.core.config

    numba.core.config.CACHE_DIR = folder  # type: ignore[attr-defined]
