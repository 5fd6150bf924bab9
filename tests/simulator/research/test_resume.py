"""A sweep killed mid-way continues from its folder: finished chunks are kept, never re-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import ROOT, random_walk

from simulator.research import distributed
from simulator.research.runner import run_sweep
from simulator.research.store import SweepStore

SPACE = ["fast=2:9:1", "slow=20,30,40,50,60"]  # 40 combinations, sma_cross: backtest per row
CHUNK = 2

# The child sweeps the same bars; each chunk takes at least 0.15 s so the kill lands mid-way.
CHILD = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {tests!r})
    from conftest import random_walk
    from simulator.research import distributed
    from simulator.research.runner import run_sweep

    real = distributed.run_chunk
    def slow(*args, **kwargs):
        time.sleep(0.15)
        return real(*args, **kwargs)
    distributed.run_chunk = slow
    run_sweep("sma_cross", {space!r}, random_walk(2_000, seed=3), folder={folder!r},
              chunk_size={chunk}, progress=False)
    """
)


def sweep(folder: Path | None = None) -> pd.DataFrame:
    return run_sweep(
        "sma_cross",
        SPACE,
        random_walk(2_000, seed=3),
        folder=folder,
        chunk_size=CHUNK,
        progress=False,
    )


def test_a_killed_sweep_resumes_without_running_any_combination_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "sweep"
    script = CHILD.format(tests=str(ROOT / "tests"), space=SPACE, folder=str(folder), chunk=CHUNK)
    child = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, start_new_session=True)
    results = folder / "results.parquet"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            if results.exists() and len(SweepStore(folder).results()) >= 3 * CHUNK:
                break
            time.sleep(0.02)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    kept = pd.read_parquet(results)
    assert 3 * CHUNK <= len(kept) < 40, "the kill must land mid-sweep"
    assert len(kept) % CHUNK == 0 and kept["combo"].is_unique

    ran: list[int] = []
    real = distributed.run_chunk

    def counting(job: Any, chunk: Any, market: Any, threads: Any = None) -> pd.DataFrame:
        ran.extend(chunk.ids)
        return real(job, chunk, market, threads)

    monkeypatch.setattr(distributed, "run_chunk", counting)
    resumed = sweep(folder)
    assert sorted(ran) == sorted(set(range(40)) - set(kept["combo"]))
    assert (resumed.attrs["reused"], resumed.attrs["ran"]) == (len(kept), 40 - len(kept))
    monkeypatch.setattr(distributed, "run_chunk", real)
    pd.testing.assert_frame_equal(resumed, sweep(), check_exact=True)
    stored = pd.read_parquet(results)
    assert list(stored["combo"]) == list(range(40))
