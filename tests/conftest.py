"""Shared fixtures: real sample history and small synthetic bars."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import settings

# Tests assert no wall-clock times (speed is measured in bench/), and an example's first call
# may compile a kernel: no hypothesis deadline. CI explores the same examples on every run (a
# failure there is reproducible from the log); locally hypothesis keeps drawing new ones.
settings.register_profile("local", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "local")

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
SHARED_REAL = ROOT.parent / "shared" / "data" / "real"


def real_file(name: str) -> Path:
    """A real sample: the shipped copy in data/, else the read-only shared folder."""
    for folder in (DATA, SHARED_REAL):
        if (folder / name).exists():
            return folder / name
    pytest.skip(f"real sample {name} not available")


@pytest.fixture(scope="session")
def eth_btc() -> pd.DataFrame:
    return pd.read_parquet(real_file("binance_ETH-BTC_5m_2018-01.parquet"))


def make_bars(rows: list[tuple[float, float, float, float]], volume: float = 1e9) -> pd.DataFrame:
    """Bars from (open, high, low, close) tuples, one minute apart."""
    index = pd.date_range("2024-01-01", periods=len(rows), freq="1min", tz="UTC")
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"], index=index)
    frame["volume"] = volume
    return frame.rename_axis("timestamp")


def random_walk(n: int, seed: int = 0, start: float = 100.0, vol: float = 0.002) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = start * np.exp(np.cumsum(rng.normal(0, vol, n)))
    open_ = np.r_[start, close[:-1]]
    spread = np.abs(rng.normal(0, vol / 2, n))
    high = np.maximum(open_, close) * (1 + spread)
    low = np.minimum(open_, close) * (1 - spread)
    index = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC")
    return pd.DataFrame(
        {
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.uniform(1, 10, n) * 1e3,
        },
        index=index,
    ).rename_axis("timestamp")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Bot tests on hand-made bars are cheap in plain Python: run them under
    NUMBA_DISABLE_JIT=1 too (scripts/test), which checks the kernels as plain Python and lets
    coverage see inside them. Property tests and runs over real data stay compiled-only."""
    heavy = ("parity", "propert", "real", "random", "golden")
    for item in items:
        path = str(item.fspath)
        if "/tests/strategies/" not in path.replace("\\", "/"):
            continue
        func = getattr(item, "obj", None)
        if getattr(func, "hypothesis", None) is not None:
            continue
        if any(word in item.name.lower() for word in heavy):
            continue
        item.add_marker(pytest.mark.nojit)
