"""A sweep on a Dask cluster (a scheduler and two workers, each its own process on 127.0.0.1)
equals the in-process sweep exactly, whichever engine runs the chunks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import random_walk

from simulator.research import distributed
from simulator.research.runner import run_sweep
from tradetower.cli import main
from tradetower.errors import ConfigError

BARS = random_walk(2_500, seed=5, vol=0.003)
C0 = float(BARS["close"].iloc[0])
BASE = {"high_price": C0 * 1.1, "investment": 500.0}
DASK = str(Path(sys.executable).with_name("dask"))
QUIET = ("--no-dashboard", "--dashboard-address", "127.0.0.1:0")  # never bind :8787


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scratch = tmp_path_factory.mktemp("dask")
    procs = [
        subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), *QUIET],
            cwd=scratch,
            start_new_session=True,
            stderr=subprocess.DEVNULL,
        )
    ]
    for _ in range(2):
        procs.append(
            subprocess.Popen(
                [DASK, "worker", address, "--nworkers", "1", "--nthreads", "1", *QUIET],
                cwd=scratch,
                start_new_session=True,
                stderr=subprocess.DEVNULL,
            )
        )
    try:
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=90)
            assert len(client.scheduler_info()["workers"]) == 2
        yield address
    finally:
        for proc in reversed(procs):
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def both(scheduler: str, strategy: str, space: list[str], **kw: Any) -> None:
    args: dict[str, Any] = {"progress": False, "chunk_size": 3, **kw}
    local = run_sweep(strategy, space, BARS, **args)
    remote = run_sweep(strategy, space, BARS, scheduler=scheduler, **args)
    pd.testing.assert_frame_equal(remote, local, check_exact=True)
    assert remote.attrs["ran"] == len(remote) > 3


def test_a_compiled_sweep_on_the_cluster_equals_the_local_one(scheduler: str) -> None:
    space = ["grid_levels=5:30:5", f"low_price={C0 * 0.85},{C0 * 0.9}"]
    both(scheduler, "simple_grid", space, base=BASE, fees=0.001)


def test_a_per_backtest_sweep_on_the_cluster_equals_the_local_one(scheduler: str) -> None:
    both(scheduler, "sma_cross", ["fast=3:9:2", "slow=20,40"], cash=5_000.0)


def test_optuna_on_the_cluster_asks_and_finds_the_same(scheduler: str) -> None:
    space = ["grid_levels=5:40", f"low_price={C0 * 0.8}:{C0 * 0.95}"]
    both(scheduler, "simple_grid", space, base=BASE, method="optuna", n_trials=12, chunk_size=4)


def test_the_cli_takes_the_scheduler_from_the_environment(
    scheduler: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "bars.parquet"
    BARS.to_parquet(data)
    argv = ["sweep", "--strategy", "sma_cross", "--data", str(data), "--grid", "fast=3,5"]
    argv += ["--grid", "slow=20,30", "--json", "--no-progress"]
    monkeypatch.delenv(distributed.SCHEDULER_ENV, raising=False)
    assert main([*argv, "--out", str(tmp_path / "local")]) == 0
    local = json.loads(capsys.readouterr().out)
    monkeypatch.setenv(distributed.SCHEDULER_ENV, scheduler)
    used: list[str] = []

    class Watched(distributed.OnDask):
        def __init__(self, client: Any, market: Any) -> None:
            super().__init__(client, market)
            used.append(client.scheduler.address)

    monkeypatch.setattr(distributed, "OnDask", Watched)
    assert main([*argv, "--out", str(tmp_path / "remote")]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert used == [scheduler]
    assert remote["top"] == local["top"] and len(remote["top"]) == 4


def test_a_local_cluster_sweep_equals_the_in_process_one() -> None:
    both("local", "simple_grid", ["grid_levels=5,10,20,40"], base={**BASE, "low_price": C0 * 0.9})


def test_an_unreachable_scheduler_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(distributed, "CONNECT_TIMEOUT", "1s")
    address = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(ConfigError, match=f"cannot reach the Dask scheduler at {address}"):
        run_sweep(
            "simple_grid",
            ["grid_levels=5"],
            BARS,
            base={**BASE, "low_price": C0 * 0.9},
            scheduler=address,
            progress=False,
        )
