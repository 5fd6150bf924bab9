"""Keep numba's on-disk cache correct when sources that cached kernels call change.

numba's cache notices edits to the file that defines a cached function, but not to other
modules it calls (the constants of :mod:`tradetower.kernel_abi`, the simulator's kernels, a
shared helper): a stale kernel would silently produce old results. So the cache lives in one
folder (``numba/`` under ``$TRADETOWER_NUMBA_CACHE_DIR``, default ``~/.cache/tradetower``),
and a stamp of two source fingerprints decides what to drop:

* the engine (kernel ABI, bot header, simulator state and kernels) changed: drop the cache of
  every TradeTower package;
* only strategies changed: drop the strategies' cache alone, so editing a bot does not
  recompile the simulator's loop.

Other libraries' cached functions (vectorbt's, say) are never touched. An explicit
``NUMBA_CACHE_DIR`` from the user wins and is left alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINE_SOURCES = (
    "tradetower/kernel_abi.py",
    "tradetower/kernel_signature.py",
    "tradetower/kernel_tools.py",
    "tradetower/jit_options.py",
    "tradetower/bots/*.py",
    "tradetower/lifecycle.py",
    "simulator/state.py",
    "simulator/nb/*.py",
)
STRATEGY_SOURCES = ("strategies/**/*.py",)
PACKAGE_DIRS = ("tradetower", "tradetower/bots", "simulator", "simulator/nb", "strategies")
_configured = False


def _fingerprint(patterns: tuple[str, ...]) -> str:
    import numba

    digest = hashlib.sha256(numba.__version__.encode())
    for pattern in patterns:
        for path in sorted(ROOT.glob(pattern)):
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def source_fingerprint() -> str:
    """A short hash of every source a cached kernel can depend on."""
    return _fingerprint(ENGINE_SOURCES + STRATEGY_SOURCES)


def cache_folder() -> str:
    base = os.environ.get("TRADETOWER_NUMBA_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "tradetower",
    )
    return os.path.join(base, "numba")


def stamp_path(folder: str) -> str:
    """One stamp per checkout: numba keys cache entries by source path, so checkouts (a CI
    clone beside a working copy) never share entries and must not drop each other's."""
    checkout = hashlib.sha1(str(ROOT).encode()).hexdigest()[:12]
    return os.path.join(folder, f"tradetower-sources-{checkout}.json")


def _drop(folder: str, package_dirs: tuple[str, ...]) -> None:
    from numba.core.caching import _CacheLocator

    for rel in package_dirs:
        probe = str(ROOT / rel / "__init__.py")
        sub = _CacheLocator.get_suitable_cache_subpath(probe)  # type: ignore[no-untyped-call]
        shutil.rmtree(os.path.join(folder, sub), ignore_errors=True)


def configure_numba_cache() -> None:
    """Point numba's cache at :func:`cache_folder` and drop what the sources made stale.

    Call once, before any cached function is compiled or loaded.
    """
    global _configured
    if _configured:
        return
    _configured = True
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    folder = cache_folder()
    os.makedirs(folder, exist_ok=True)
    stamp_file = stamp_path(folder)
    now = {"engine": _fingerprint(ENGINE_SOURCES), "strategies": _fingerprint(STRATEGY_SOURCES)}
    try:
        with open(stamp_file) as fh:
            before = json.load(fh)
    except (OSError, ValueError):
        before = {}
    if before.get("engine") != now["engine"]:
        _drop(folder, PACKAGE_DIRS)
    elif before.get("strategies") != now["strategies"]:
        _drop(folder, ("strategies",))
    if before != now:
        tmp = f"{stamp_file}.{os.getpid()}"
        with open(tmp, "w") as fh:
            json.dump(now, fh)
        os.replace(tmp, stamp_file)
    import numba.core.config

    numba.core.config.CACHE_DIR = folder  # type: ignore[attr-defined]
