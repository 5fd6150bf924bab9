"""One chunk of combinations, evaluated where it runs (in-process or in a Dask worker) and
reduced to one row of metrics each, so only a small frame ever leaves the worker.

Compiled bots go through :func:`simulator.sweep.sweep` (one ``prange`` call per chunk); bots
whose signals depend on their parameters (``sma_cross``) run :func:`simulator.backtest` per
combination, reduced to the same metric columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from simulator.research.store import COMBO
from tradetower.domain.bars import MarketData
from tradetower.domain.instrument import Instrument
from tradetower.errors import ConfigError
from tradetower.strategy import KernelStrategy

Engine = Literal["sweep", "backtest"]


@dataclass(frozen=True)
class Job:
    """What every chunk of one sweep shares (the bars travel separately, once per worker)."""

    strategy: str | type[Any]
    """A registry name, or the class itself (pickled by reference: it must be importable)."""
    params: tuple[str, ...]
    metrics: tuple[str, ...]
    engine: Engine
    base: Mapping[str, Any] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    instrument: Instrument | Mapping[str, Instrument] | None = None


@dataclass(frozen=True)
class Chunk:
    ids: tuple[int, ...]
    combos: tuple[dict[str, Any], ...]


def strategy_of(strategy: str | type[Any]) -> tuple[str, type[Any]]:
    """``(name, class)`` for a registry name or a strategy class."""
    if isinstance(strategy, str):
        from strategies import strategy_class

        return strategy, strategy_class(strategy)
    return str(getattr(strategy, "name", strategy.__name__)), strategy


def metric_names(cls: type[Any]) -> tuple[str, ...]:
    """The metric columns of a sweep of ``cls``: the sweep's own, then its ``SWEEP_EXTRAS``."""
    from simulator.nb.sweep import METRIC_NAMES

    extras: Mapping[str, int] = getattr(cls, "SWEEP_EXTRAS", {})
    return (*METRIC_NAMES, *extras)


def engine_for(cls: type[Any], config: Any, market: MarketData) -> Engine:
    """``"sweep"`` for a compiled bot without parameter-dependent signals, else ``"backtest"``."""
    if not issubclass(cls, KernelStrategy):
        return "backtest"
    strat: Any = cls(config)  # type: ignore[call-arg]
    strat.prepare(market)
    return "sweep" if strat.signals(market) is None else "backtest"


def run_chunk(
    job: Job, chunk: Chunk, market: MarketData, threads: int | None = None
) -> pd.DataFrame:
    """Columns ``combo``, the parameters, the metrics; one row per combination, in order."""
    _, cls = strategy_of(job.strategy)
    if threads is None:
        threads = _worker_threads()
    if job.engine == "sweep":
        from simulator.sweep import sweep

        table = sweep(
            cls,
            list(chunk.combos),
            market,
            base=job.base,
            instrument=job.instrument,
            threads=threads,
            **job.settings,
        )
        metrics = table[list(job.metrics)].to_numpy(dtype=np.float64)
    else:
        metrics = np.array([_backtest_row(cls, job, combo, market) for combo in chunk.combos])
    return assemble(job, chunk, metrics.reshape(len(chunk.ids), len(job.metrics)))


def assemble(job: Job, chunk: Chunk, metrics: np.ndarray) -> pd.DataFrame:
    """A chunk's result frame from its metric matrix (NaN rows for combinations not run)."""
    columns: dict[str, Any] = {COMBO: np.asarray(chunk.ids, dtype=np.int64)}
    for name in job.params:
        columns[name] = [combo[name] for combo in chunk.combos]
    for j, name in enumerate(job.metrics):
        columns[name] = metrics[:, j]
    return pd.DataFrame(columns)  # in one go: a column at a time costs ~3 ms a chunk


def _backtest_row(
    cls: type[Any], job: Job, combo: Mapping[str, Any], market: MarketData
) -> list[float]:
    from simulator.engine import backtest

    try:
        config = cls.Config.parse({**job.base, **combo})
    except ConfigError as exc:
        raise ConfigError(exc.field, f"combination {dict(combo)}: {exc}") from None
    result = backtest(cls(config), market, instrument=job.instrument, **job.settings)
    return [_float(result.metrics.get(name)) for name in job.metrics]


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _worker_threads() -> int | None:
    """The thread count of the Dask worker running this, so its numba threads match it."""
    try:
        from distributed import get_worker

        return int(get_worker().state.nthreads)
    except (ImportError, ValueError):
        return None


def chunks(ids: Sequence[int], combos: Sequence[dict[str, Any]], size: int) -> list[Chunk]:
    """Consecutive chunks of at most ``size`` combinations."""
    return [
        Chunk(tuple(ids[i : i + size]), tuple(combos[i : i + size]))
        for i in range(0, len(ids), size)
    ]
