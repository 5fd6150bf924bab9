"""Case 3: a whole ``tradetower backtest`` process on the bundled sample, warm numba cache.

One warm-up process first (it compiles, or loads the cache, and warms the OS file cache), then
the best of N processes, each timed from spawn to exit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = "data/binance_ETH-BTC_5m_2018-01.parquet"


def command(sample: str = SAMPLE) -> list[str]:
    exe = Path(sys.executable).with_name("tradetower")
    head = [str(exe)] if exe.exists() else [sys.executable, "-m", "tradetower"]
    return [*head, "backtest", "--strategy", "sma_cross", "--data", sample, "--no-save"]


def run_cli(cmd: list[str]) -> float:
    """Wall time of one process; raises if it fails."""
    env = {**os.environ, "NUMBA_NUM_THREADS": os.environ.get("NUMBA_NUM_THREADS", "1")}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return elapsed
