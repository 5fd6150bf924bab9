"""``sweep()``: many parameter combinations of a compiled strategy, in parallel, as metrics.

Configs are validated before the sweep starts (an error inside ``prange`` would surface as a
bare ``SystemError``); ``parallel=False`` runs the same code serially and names a failing
combination. Combinations are shuffled before the parallel loop (fills are spread unevenly
across parameters) and the results are returned in the original order.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from simulator.compat import apply_compat
from simulator.config import SimConfig
from simulator.engine import _instruments, instrument_table, sim_params
from tradetower.domain.bars import MarketData
from tradetower.domain.instrument import Instrument
from tradetower.errors import ConfigError
from tradetower.numba_cache import configure_numba_cache
from tradetower.strategy import KernelStrategy


def combinations(
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """A Cartesian grid ``{"a": [1, 2], "b": [3]}``, or an explicit list of dicts."""
    if isinstance(grid, Mapping):
        keys = list(grid)
        return [
            dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())
        ]
    return [dict(c) for c in grid]


def _pad(rows: list[np.ndarray]) -> np.ndarray:
    width = max(r.shape[0] for r in rows)
    out = np.zeros((len(rows), width))
    for j, r in enumerate(rows):
        out[j, : r.shape[0]] = r
    return out


def sweep(
    strategy_cls: type[KernelStrategy],
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    data: Any,
    *,
    base: Mapping[str, Any] | None = None,
    instrument: Instrument | Mapping[str, Instrument] | None = None,
    parallel: bool = True,
    threads: int | None = None,
    shuffle: bool = True,
    seed: int = 0,
    capacity: int = 1024,
    symbol: str = "ASSET",
    **settings: Any,
) -> pd.DataFrame:
    """Backtest every combination of ``grid`` (merged over ``base``) and return one row of
    metrics per combination: the parameters, then final equity, return, max drawdown, fills,
    orders, fees, exposure, and the strategy's ``SWEEP_EXTRAS`` (a mapping of name to kernel
    state index). Strategies whose signals depend on parameters are not supported here: run
    :func:`simulator.backtest` per combination for those."""
    configure_numba_cache()
    cfg = SimConfig.parse(settings)
    market = MarketData.coerce(data, symbol)
    instruments = _instruments(market.symbols, instrument, cfg)
    cfg, instruments = apply_compat(cfg, instruments)
    combos = combinations(grid)
    if not combos:
        raise ConfigError("grid", "the sweep has no combinations")
    config_cls = getattr(strategy_cls, "Config", None)
    if config_cls is None or not issubclass(strategy_cls, KernelStrategy):
        raise ConfigError("strategy", f"{strategy_cls.__name__} has no compiled kernel to sweep")
    strategies = []
    for j, combo in enumerate(combos):
        try:
            config = config_cls.parse({**(base or {}), **combo})
        except ConfigError as exc:
            raise ConfigError(exc.field, f"combination {j} {combo}: {exc}") from None
        strat = strategy_cls(config)  # type: ignore[call-arg]
        strat.prepare(market)
        if strat.signals(market) is not None:
            raise ConfigError("strategy", f"{strategy_cls.__name__} needs signals; use backtest()")
        check = getattr(strat, "check", None)
        if callable(check):
            check(instruments)
        strategies.append(strat)
    params = _pad([np.asarray(s.params, dtype=np.float64) for s in strategies])
    kstates = _pad([s.state for s in strategies])
    extras: Mapping[str, int] = getattr(strategy_cls, "SWEEP_EXTRAS", {})
    extra_idx = np.asarray(list(extras.values()), dtype=np.int64)

    from simulator.nb.sweep import METRIC_NAMES, N_METRICS, run_one_nb, sweep_nb

    out = np.full((len(combos), N_METRICS + len(extras)), np.nan)
    order = np.arange(len(combos), dtype=np.int64)
    if shuffle:
        np.random.default_rng(seed).shuffle(order)
    simp = sim_params(cfg, wants_bars=False)
    inst = instrument_table(instruments)
    kernel = type(strategies[0]).kernel
    wanted = type(strategies[0]).event_mask()
    lows, highs, close_px = market.streams
    time_scale = np.array(market.tick_scale, dtype=np.int64)
    started = time.perf_counter()
    if parallel:
        import numba

        previous = numba.get_num_threads()
        if threads:
            numba.set_num_threads(threads)
        try:
            sweep_nb(
                market.ohlcv,
                market.ticks,
                time_scale,
                inst,
                simp,
                kernel,
                params,
                kstates,
                order,
                capacity,
                cfg.close_at_end,
                extra_idx,
                close_px,
                lows,
                highs,
                out,
                numba.get_num_threads(),
                wanted,
            )
        finally:
            numba.set_num_threads(previous)
    else:
        for jj in order:
            j = int(jj)
            try:
                run_one_nb(
                    market.ohlcv,
                    market.ticks,
                    time_scale,
                    inst,
                    simp,
                    kernel,
                    params[j].copy(),
                    kstates[j].copy(),
                    capacity,
                    cfg.close_at_end,
                    extra_idx,
                    close_px,
                    lows,
                    highs,
                    out[j],
                    wanted,
                )
            except Exception as exc:
                raise RuntimeError(f"combination {j} {combos[j]} failed: {exc}") from exc
    elapsed = time.perf_counter() - started
    frame = pd.DataFrame(combos)
    metrics = pd.DataFrame(out, columns=[*METRIC_NAMES, *extras])
    result = pd.concat([frame, metrics], axis=1)
    result.attrs["elapsed_s"] = elapsed
    result.attrs["threads"] = threads if parallel else 1
    return result
