"""Walk-forward analysis: pick the best combination in-sample, judge it out-of-sample.

Folds are windows of bars (end exclusive):

- ``k_folds(n, k)``: the bars cut into k+1 consecutive blocks at ``j·n // (k+1)``; fold i
  trains on block i (or, ``anchored``, on blocks 0..i) and tests on block i+1;
- ``rolling_folds(n, train, test, step)``: fold i trains on ``[i·step, i·step+train)`` and tests
  on the ``test`` bars after it, while they fit (``step`` defaults to ``test``).

Each fold's in-sample sweep is an ordinary :func:`run_sweep` (its own sweep folder
``fold-NNN/``, with its slice of the bars, when a folder is given); the best row by the
objective is then run once on the out-of-sample bars and reduced to the same metric columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.research.chunk import Chunk, Job, engine_for, metric_names, run_chunk, strategy_of
from simulator.research.runner import (
    DEFAULT_OBJECTIVE,
    Objective,
    SpaceLike,
    describe_data,
    run_sweep,
)
from simulator.research.space import parse_space
from simulator.research.store import COMBO
from tradetower.domain.bars import MarketData
from tradetower.errors import ConfigError

TABLE = "walkforward.parquet"


@dataclass(frozen=True)
class Fold:
    """Bar windows ``[is_start, is_end)`` in-sample and ``[oos_start, oos_end)`` after it."""

    index: int
    is_start: int
    is_end: int
    oos_start: int
    oos_end: int


def k_folds(n_bars: int, k: int, *, anchored: bool = False) -> list[Fold]:
    """``k`` folds over ``n_bars`` bars (see the module docstring)."""
    if k < 1:
        raise ConfigError("folds", f"folds: must be ≥ 1 (got {k})")
    if n_bars < 2 * (k + 1):
        raise ConfigError("folds", f"folds: {n_bars} bars are too few for {k} folds")
    edges = [j * n_bars // (k + 1) for j in range(k + 2)]
    return [
        Fold(i, 0 if anchored else edges[i], edges[i + 1], edges[i + 1], edges[i + 2])
        for i in range(k)
    ]


def rolling_folds(n_bars: int, train: int, test: int, step: int | None = None) -> list[Fold]:
    """Rolling windows of ``train`` then ``test`` bars, moved by ``step`` (default ``test``)."""
    step = test if step is None else step
    for name, value in (("train_bars", train), ("test_bars", test), ("step_bars", step)):
        if value < 1:
            raise ConfigError(name, f"{name}: must be ≥ 1 (got {value})")
    folds: list[Fold] = []
    start = 0
    while start + train + test <= n_bars:
        folds.append(Fold(len(folds), start, start + train, start + train, start + train + test))
        start += step
    if not folds:
        raise ConfigError(
            "train_bars", f"train_bars + test_bars ({train + test}) exceed the {n_bars} bars"
        )
    return folds


def bars_slice(market: MarketData, start: int, end: int) -> MarketData:
    return MarketData(
        market.symbols, market.index[start:end], market.ohlcv[start:end], rising=market.rising
    )


def walk_forward(
    strategy: str | type[Any],
    space: SpaceLike,
    data: Any,
    *,
    folds: int | None = None,
    anchored: bool = False,
    train_bars: int | None = None,
    test_bars: int | None = None,
    step_bars: int | None = None,
    objective: str = DEFAULT_OBJECTIVE,
    base: Mapping[str, Any] | None = None,
    folder: str | Path | None = None,
    data_source: Mapping[str, Any] | None = None,
    symbol: str = "ASSET",
    instrument: Any = None,
    **sweep_args: Any,
) -> pd.DataFrame:
    """One row per fold: its windows (bar indices and times), the best in-sample combination's
    parameters and objective, and its out-of-sample metrics (``oos_`` prefix).

    Give ``folds`` (k folds) or ``train_bars`` and ``test_bars`` (rolling windows); every other
    keyword goes to :func:`run_sweep` (method, trials, seed, scheduler, simulator settings...).
    """
    market = MarketData.coerce(data, symbol)
    if (folds is None) == (train_bars is None or test_bars is None):
        raise ConfigError("folds", "give either folds, or train_bars and test_bars")
    windows = (
        k_folds(market.n_bars, folds, anchored=anchored)
        if folds is not None
        else rolling_folds(market.n_bars, train_bars or 0, test_bars or 0, step_bars)
    )
    name, cls = strategy_of(strategy)
    parsed = parse_space(cls.Config, space)
    goal = Objective.parse(objective, metric_names(cls))
    source = dict(data_source) if data_source is not None else None
    if source is None and isinstance(data, str | Path):
        source = {"path": str(Path(data).resolve())}
    settings = {k: v for k, v in sweep_args.items() if k not in _SWEEP_ONLY}
    rows = []
    for fold in windows:
        sample = bars_slice(market, fold.is_start, fold.is_end)
        table = run_sweep(
            strategy,
            parsed,
            sample,
            objective=str(goal),
            base=base,
            folder=None if folder is None else Path(folder) / f"fold-{fold.index:03d}",
            data_source=None,  # each fold folder keeps its own slice of the bars
            symbol=symbol,
            instrument=instrument,
            **sweep_args,
        )
        best = table.iloc[0]
        combo = {p: _scalar(table[p].iloc[0]) for p in parsed.names}
        oos = bars_slice(market, fold.oos_start, fold.oos_end)
        config = cls.Config.parse({**(base or {}), **combo})
        job = Job(
            strategy=strategy,
            params=tuple(parsed.names),
            metrics=metric_names(cls),
            engine=engine_for(cls, config, oos),
            base=dict(base or {}),
            settings=settings,
            instrument=instrument,
        )
        tested = run_chunk(job, Chunk((int(best[COMBO]),), (combo,)), oos).iloc[0]
        rows.append(
            {
                "fold": fold.index,
                "is_start": fold.is_start,
                "is_end": fold.is_end,
                "oos_start": fold.oos_start,
                "oos_end": fold.oos_end,
                "is_from": market.index[fold.is_start],
                "is_to": market.index[fold.is_end - 1],
                "oos_from": market.index[fold.oos_start],
                "oos_to": market.index[fold.oos_end - 1],
                "best_combo": int(best[COMBO]),
                **combo,
                f"is_{goal.metric}": float(best[goal.metric]),
                **{f"oos_{m}": float(tested[m]) for m in job.metrics},
            }
        )
    result = pd.DataFrame(rows)
    if folder is not None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        result.to_parquet(Path(folder) / TABLE, index=False)
    described = describe_data(data, market, source)
    result.attrs.update(objective=str(goal), strategy=name, params=parsed.names, data=described)
    return result


def _scalar(value: Any) -> Any:
    """A plain Python value (config models refuse numpy scalars' types in strict fields)."""
    return value.item() if isinstance(value, np.generic) else value


# run_sweep keywords that are not simulator settings
_SWEEP_ONLY = frozenset(
    {"method", "n_trials", "seed", "chunk_size", "resume", "scheduler", "progress"}
)
