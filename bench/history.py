"""Reading a year of one-minute bars from the history cache into the engine.

Targets (issue 4): one symbol's 525,600 bars from the warm local cache into the engine's
``MarketData`` in under 100 ms; from Azure Blob (Azurite here) in under 1 s. The bars are the
benchmark's seeded walk, imported once (12 monthly Parquet files); each figure is the best of
``--repeat`` reads after a warm-up. The DataFrame path (``load`` then the engine's own
validation, as ``backtest(data=frame)`` does) is shown beside it for reference.
Run: ``.venv/bin/python -m bench.history`` (``--no-azurite`` for the local cache only).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from bench.data import random_walk_bars
from bench.timing import timed
from tradetower.domain import MarketData
from tradetower.history.cache import HistoryCache
from tradetower.history.store import AzureBlobStore, LocalStore, ObjectStore

ROOT = Path(__file__).resolve().parent.parent
VENUE, SYMBOL, START, END = "bench", "X-USD", "2024-01-01", "2024-12-31"  # 365 days
LOCAL_TARGET_S = 0.100
BLOB_TARGET_S = 1.0


def _fill(store: ObjectStore, bars: pd.DataFrame, folder: Path) -> HistoryCache:
    """Import the year into ``store`` through the cache's own validated write path."""
    path = folder / "year.parquet"
    bars.to_parquet(path)
    cache = HistoryCache(store)
    cache.import_file(path, venue=VENUE, symbol=SYMBOL, timeframe="1m")
    return cache


def _row(label: str, best_s: float, target_s: float | None, n: int) -> str:
    flag = "    " if target_s is None else ("PASS" if best_s < target_s else "MISS")
    goal = "" if target_s is None else f"  (target < {target_s * 1e3:,.0f} ms)"
    return f"{flag} {label:40s} {best_s * 1e3:8.1f} ms  {n:,} bars{goal}"


def _measure(cache: HistoryCache, where: str, target_s: float, repeat: int) -> list[str]:
    def market() -> MarketData:
        return cache.load_market(VENUE, SYMBOL, "1m", START, END, offline=True)

    def frame_then_engine() -> MarketData:
        frame = cache.load(VENUE, SYMBOL, "1m", START, END, offline=True)
        return MarketData.coerce(frame, SYMBOL)

    cases: list[tuple[str, Callable[[], Any], float | None]] = [
        (f"{where}: load_market -> engine", market, target_s),
        (f"{where}: load + engine validation", frame_then_engine, None),
    ]
    lines = []
    for label, fn, target in cases:
        t = timed(fn, repeat)
        lines.append(_row(label, t.best_s, target, t.last.n_bars))
    return lines


def _azurite_store() -> tuple[Any, AzureBlobStore]:
    """Start Azurite (the tests' launcher) and give a fresh container."""
    sys.path.insert(0, str(ROOT / "tests"))
    from azure.storage.blob import BlobServiceClient
    from azurite import azurite  # type: ignore[import-not-found]

    server = azurite()
    connection = server.__enter__()
    container = BlobServiceClient.from_connection_string(connection).get_container_client(
        "historical-data"
    )
    container.create_container()
    return server, AzureBlobStore(container)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__)
    parser.add_argument("--repeat", type=int, default=5, help="timed reads after a warm-up")
    parser.add_argument("--no-azurite", action="store_true", help="local cache only")
    args = parser.parse_args(argv)
    bars = random_walk_bars()
    print(f"history cache reads: {len(bars):,} one-minute bars, best of {args.repeat}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        local = _fill(LocalStore(folder / "cache"), bars, folder)
        size = sum(p.stat().st_size for p in (folder / "cache").rglob("*.parquet"))
        print(
            f"     imported into a local folder in {time.perf_counter() - t0:.1f} s "
            f"({size / 2**20:.1f} MiB in 12 files)"
        )
        for line in _measure(local, "local", LOCAL_TARGET_S, args.repeat):
            print(line)
        if args.no_azurite:
            return 0
        server, blob_store = _azurite_store()
        try:
            t0 = time.perf_counter()
            blob = _fill(blob_store, bars, folder)
            print(f"     imported into Azurite in {time.perf_counter() - t0:.1f} s")
            for line in _measure(blob, "Azurite", BLOB_TARGET_S, args.repeat):
                print(line)
        finally:
            server.__exit__(None, None, None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
