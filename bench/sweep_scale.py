"""A 10,000-combination grid sweep on a year of one-minute bars, in-process and on Dask.

Targets (issue 5): the in-process sweep (``prange`` over every core) under 20 s; the same sweep
through a ``LocalCluster`` of two single-threaded worker processes within 20% of it. Both are
timed after a warm-up (numba cache loaded, workers started and warm); the cluster's start is
reported beside the figure, not in it. The two result tables must be identical.

The grid: :class:`strategies.SimpleGrid` (the engine's reference grid) or, with
``--strategy grid``, the full Grid bot; 0.1% fees, level counts from 10 up x 20 lower bounds x 10
upper bounds around the first close.
Issue 3's case is ``--combos 1000 --strategy grid`` (target under 2 s): the same 2 ms a
combination.
Run: ``.venv/bin/python -m bench.sweep_scale [--combos N] [--bars N] [--strategy S]
[--no-cluster]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from typing import Any

import numba
import pandas as pd

from bench.data import BARS_PER_YEAR, random_walk_bars
from simulator.research.runner import run_sweep

TARGET_MS_EACH = 2.0  # 10,000 combinations under 20 s (issue 5); 1,000 under 2 s (issue 3)
TARGET_OVERHEAD = 0.20
WORKERS = 2


def space(first_close: float, combos: int) -> list[str]:
    """``combos`` grid combinations (a multiple of 200: 20 lower x 10 upper bounds). The level
    counts spread evenly over 10-59 whatever their number, so a smaller sweep has the same mix
    of quiet and busy grids as the 10,000 one (1,000 combinations: 10, 20, 30, 40, 50)."""
    n_levels = min(50, max(1, combos // 200))
    step = 50 // n_levels
    lo = [round(first_close * (0.80 + 0.005 * j), 4) for j in range(20)]
    hi = [round(first_close * (1.05 + 0.01 * j), 4) for j in range(10)]
    return [
        f"grid_levels=10:{10 + step * (n_levels - 1)}:{step}",
        "low_price=" + ",".join(map(str, lo)),
        "high_price=" + ",".join(map(str, hi)),
    ]


def sweep(bars: pd.DataFrame, dims: list[str], scheduler: str, strategy: str) -> pd.DataFrame:
    return run_sweep(
        strategy,
        dims,
        bars,
        base={"investment": 1_000.0},
        fees=0.001,
        scheduler=scheduler,
        progress=False,
    )


def warm_up(first_close: float, strategy: str) -> int:
    """A tiny sweep: numba's cache loaded and the sweep modules imported in this process."""
    band = [f"low_price={first_close * 0.9}", f"high_price={first_close * 1.1}"]
    dims = ["grid_levels=10,20", *band]
    return len(sweep(random_walk_bars(2_000), dims, "", strategy))


def timed(
    bars: pd.DataFrame, dims: list[str], scheduler: str, strategy: str
) -> tuple[float, pd.DataFrame]:
    started = time.perf_counter()
    table = sweep(bars, dims, scheduler, strategy)
    return time.perf_counter() - started, table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--combos", type=int, default=10_000)
    parser.add_argument("--bars", type=int, default=BARS_PER_YEAR)
    parser.add_argument("--strategy", choices=("simple_grid", "grid"), default="simple_grid")
    parser.add_argument("--no-cluster", action="store_true", help="in-process only")
    args = parser.parse_args(argv)
    strategy = args.strategy
    bars = random_walk_bars(args.bars)
    first = float(bars["close"].iloc[0])
    dims = space(first, args.combos)
    n = warm_up(first, strategy)
    threads = numba.get_num_threads()
    print(
        f"sweep_scale: {strategy} on {len(bars):,} one-minute bars, "
        f"{os.cpu_count()} cores, numba {threads} threads (warm-up: {n} combinations)"
    )

    cpu0 = time.process_time()
    local_s, local = timed(bars, dims, "", strategy)
    cpu_s = time.process_time() - cpu0
    combos = len(local)
    target_s = TARGET_MS_EACH * combos / 1e3
    flag = "PASS" if local_s < target_s else "MISS"
    print(
        f"{flag} in-process   {combos:,} combinations {local_s:8.1f} s  "
        f"{local_s / combos * 1e3:7.2f} ms each  (target < {target_s:.0f} s; "
        f"CPU {cpu_s:.1f} s over {threads} threads, {local['n_fills'].mean():.0f} fills a run)"
    )
    if args.no_cluster:
        return

    from distributed import Client, LocalCluster

    started = time.perf_counter()
    with (
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=WORKERS,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0", "dashboard": False},
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        address: Any = cluster.scheduler_address
        client.wait_for_workers(WORKERS)
        client.run(warm_up, first, strategy)
        start_s = time.perf_counter() - started
        dask_s, remote = timed(bars, dims, address, strategy)
    overhead = dask_s / local_s - 1.0
    flag = "PASS" if overhead < TARGET_OVERHEAD else "MISS"
    same = remote.equals(local)
    print(
        f"{flag} LocalCluster {combos:,} combinations {dask_s:8.1f} s  "
        f"{dask_s / combos * 1e3:7.2f} ms each  overhead {overhead * 100:+.1f}% "
        f"(target < {TARGET_OVERHEAD * 100:.0f}%; {WORKERS} workers x 1 thread, "
        f"cluster start + warm-up {start_s:.1f} s not counted)"
    )
    print(f"{'PASS' if same else 'MISS'} identical result tables: {same}")


if __name__ == "__main__":
    main()
