"""Pause a backtest at a bar, save it to a file, and resume it later with identical results.

``backtest_until(strategy, data, until=...)`` runs bars up to (not including) ``until`` and
returns a :class:`Checkpoint`: the whole venue state (balances, positions, the order, fill,
trigger and timer logs, queued events, the loop's counters) and the strategy's kernel state.
``resume(checkpoint, strategy, data)`` carries on from there; the result equals an
uninterrupted :func:`simulator.backtest` of the same run, fill for fill. The pause is taken
between bars, where no event is half handled: the run is driven over the bars before
``until`` exactly as the full run is, and continued over the same arrays.

Only strategies whose state is their kernel's arrays (every built-in bot, and any
:class:`~tradetower.strategy.KernelStrategy`) can be checkpointed; a plain-Python strategy's
state is its own Python objects, which the engine cannot see.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator import state as S
from simulator.config import SimConfig
from simulator.engine import Mode, PreparedRun, prepare_run
from simulator.result import BacktestResult
from tradetower.domain.bars import MarketData
from tradetower.domain.instrument import Instrument
from tradetower.errors import ConfigError, DataValidationError
from tradetower.strategy import KernelStrategy, Strategy

# Venue-state fields rebuilt from the data on resume (everything else is saved).
_INPUTS = ("ohlcv", "times", "time_scale", "funding", "signals", "sig_bars", "lows", "highs")
FORMAT = "tradetower-checkpoint/1"
# Each log and the counter of the rows it uses.
_LOG_COUNTERS = (
    ("orders", S.C_N_ORDERS),
    ("active", S.C_N_ACTIVE),
    ("fills", S.C_N_FILLS),
    ("trig", S.C_N_TRIG),
    ("trig_live", S.C_N_ACTIVE_TRIG),
    ("timers", S.C_N_TIMERS),
)


@dataclass
class Checkpoint:
    """A paused backtest. ``bar`` is the first bar not yet processed."""

    bar: int
    time: str
    strategy: str
    kernel_params: np.ndarray
    kernel_state: np.ndarray
    venue: dict[str, np.ndarray]
    settings: dict[str, Any]
    instruments: dict[str, dict[str, Any]] | None
    symbol: str
    initial_pos: np.ndarray
    data_digest: str
    mode: str
    elapsed_ms: float
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """Write one ``.npz`` file (arrays, plus the rest as JSON)."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        header = {
            "format": FORMAT,
            "bar": self.bar,
            "time": self.time,
            "strategy": self.strategy,
            "settings": self.settings,
            "instruments": self.instruments,
            "symbol": self.symbol,
            "data_digest": self.data_digest,
            "mode": self.mode,
            "elapsed_ms": self.elapsed_ms,
            "meta": self.meta,
        }
        payload: dict[str, Any] = {f"venue.{k}": v for k, v in self.venue.items()}
        payload["header"] = np.array(json.dumps(header, default=str))
        payload["kernel_params"] = self.kernel_params
        payload["kernel_state"] = self.kernel_state
        payload["initial_pos"] = self.initial_pos
        with out.open("wb") as fh:
            np.savez_compressed(fh, **payload)
        return out

    @classmethod
    def load(cls, path: str | Path) -> Checkpoint:
        p = Path(path)
        if not p.exists():
            raise DataValidationError(f"{p}: no such checkpoint")
        try:
            with np.load(p, allow_pickle=False) as z:
                header = json.loads(str(z["header"]))
                venue = {k[6:]: z[k].copy() for k in z.files if k.startswith("venue.")}
                kernel_params = z["kernel_params"].copy()
                kernel_state = z["kernel_state"].copy()
                initial_pos = z["initial_pos"].copy()
        except (OSError, ValueError, KeyError) as exc:
            raise DataValidationError(f"{p}: not a TradeTower checkpoint ({exc})") from exc
        if header.get("format") != FORMAT:
            raise DataValidationError(f"{p}: unknown checkpoint format {header.get('format')!r}")
        return cls(
            bar=int(header["bar"]),
            time=str(header["time"]),
            strategy=str(header["strategy"]),
            kernel_params=kernel_params,
            kernel_state=kernel_state,
            venue=venue,
            settings=dict(header["settings"]),
            instruments=header["instruments"],
            symbol=str(header["symbol"]),
            initial_pos=initial_pos,
            data_digest=str(header["data_digest"]),
            mode=str(header["mode"]),
            elapsed_ms=float(header["elapsed_ms"]),
            meta=dict(header.get("meta", {})),
        )


def _with_live_triggers(venue: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``venue`` with the armed-trigger list, rebuilt from the trigger log in a checkpoint
    written before the simulator kept one."""
    if "trig_live" in venue:
        return venue
    trig = venue["trig"]
    n = int(venue["counters"][S.C_N_TRIG])
    armed = np.flatnonzero(trig[:n, S.T_ACTIVE] != 0.0)
    live = np.zeros(trig.shape[0], dtype=np.int64)
    live[: armed.size] = armed
    counters = venue["counters"].copy()
    counters[S.C_N_ACTIVE_TRIG] = armed.size
    return {**venue, "trig_live": live, "counters": counters}


def data_digest(market: MarketData) -> str:
    """A fingerprint of the bars: a checkpoint resumes only on the data it was made on."""
    h = hashlib.blake2b(digest_size=16)
    h.update(np.ascontiguousarray(market.time_ms).tobytes())
    h.update(np.ascontiguousarray(market.ohlcv).tobytes())
    h.update("|".join(market.symbols).encode())
    return h.hexdigest()


def backtest_until(
    strategy: Strategy,
    data: Any,
    until: int | str | pd.Timestamp,
    *,
    instrument: Instrument | Mapping[str, Instrument] | None = None,
    funding: pd.Series | Mapping[str, pd.Series] | None = None,
    holdings: Mapping[str, float] | None = None,
    mode: Mode = "auto",
    symbol: str = "ASSET",
    config: SimConfig | None = None,
    **settings: Any,
) -> Checkpoint:
    """Run ``strategy`` (as :func:`simulator.backtest` would) over the bars before ``until``
    (a bar index or a timestamp) and return the paused run."""
    _require_kernel(strategy)
    merged = {**(config.model_dump() if config else {}), **settings}
    run = prepare_run(strategy, data, instrument, funding, holdings, symbol, None, merged)
    bar = _bar_of(run.market, until)
    _drive_until(run, mode, bar)
    return _capture(run, bar, mode, merged, _instrument_dumps(instrument), symbol)


def resume(
    checkpoint: Checkpoint,
    strategy: Strategy,
    data: Any,
    *,
    funding: pd.Series | Mapping[str, pd.Series] | None = None,
    until: int | str | pd.Timestamp | None = None,
    mode: Mode | None = None,
) -> BacktestResult | Checkpoint:
    """Continue a paused run to the end (a :class:`BacktestResult`) or to ``until`` (another
    :class:`Checkpoint`). ``strategy`` must be configured as the paused one was, and ``data``
    (and ``funding``) must be the same bars."""
    kernel = _require_kernel(strategy)
    instruments = _instruments_from(checkpoint.instruments)
    run = prepare_run(
        strategy, data, instruments, funding, None, checkpoint.symbol, None, checkpoint.settings
    )
    if data_digest(run.market) != checkpoint.data_digest:
        raise DataValidationError("the bars differ from those the checkpoint was made on")
    if type(strategy).__name__ != checkpoint.strategy:
        raise ConfigError(
            "strategy",
            f"the checkpoint holds a {checkpoint.strategy}, not a {type(strategy).__name__}",
        )
    params = np.ascontiguousarray(kernel.params, dtype=np.float64)
    if params.shape != checkpoint.kernel_params.shape or not np.array_equal(
        params, checkpoint.kernel_params, equal_nan=True
    ):
        raise ConfigError("strategy", "the strategy's parameters differ from the checkpoint's")
    kernel.state = np.ascontiguousarray(checkpoint.kernel_state, dtype=np.float64).copy()
    st = run.driver.state
    venue = _with_live_triggers(checkpoint.venue)
    restored = {name: venue[name].copy() for name in S.SimState._fields if name not in _INPUTS}
    for name in ("inst", "params"):
        if not np.array_equal(restored[name], getattr(st, name), equal_nan=True):
            raise ConfigError("settings", f"the simulator's {name} differ from the checkpoint's")
    counters = restored["counters"][: S.N_COUNTERS]  # (a checkpoint may keep other counters)
    if counters.shape[0] < S.N_COUNTERS:  # a checkpoint written when the loop kept fewer
        counters = np.concatenate([counters, np.zeros(S.N_COUNTERS - counters.shape[0], np.int64)])
    counters[S.C_ENDED] = 0
    # The jump to the next signal starts from the first: what a checkpoint holds there may be
    # anything (an older loop kept other counters in its place).
    counters[S.C_SIG_CURSOR] = 0
    restored["counters"] = counters
    run.driver.state = st._replace(**restored)
    run.initial_pos = checkpoint.initial_pos.copy()
    run.elapsed_ms = checkpoint.elapsed_ms
    run_mode: Mode = mode or checkpoint.mode  # type: ignore[assignment]
    if until is None:
        run.drive(run_mode)
        return run.finish()
    bar = _bar_of(run.market, until)
    if bar <= checkpoint.bar:
        raise ConfigError("until", f"bar {bar} is not after the checkpoint's bar {checkpoint.bar}")
    _drive_until(run, run_mode, bar)
    return _capture(
        run, bar, run_mode, checkpoint.settings, checkpoint.instruments, checkpoint.symbol
    )


def _saved_fields() -> list[str]:
    return [name for name in S.SimState._fields if name not in _INPUTS]


def _require_kernel(strategy: Strategy) -> KernelStrategy:
    if not isinstance(strategy, KernelStrategy):
        raise ConfigError(
            "strategy",
            f"{type(strategy).__name__} keeps its state in Python objects; only strategies with "
            "a compiled kernel (the built-in bots) can be checkpointed",
        )
    return strategy


def _bar_of(market: MarketData, until: int | str | pd.Timestamp) -> int:
    n = market.n_bars
    if isinstance(until, (int, np.integer)):
        bar = int(until)
    else:
        ts = pd.Timestamp(until)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        bar = int(market.index.searchsorted(ts, side="left"))
    if not 0 < bar < n:
        raise ConfigError("until", f"must fall inside the data: bar 1 to {n - 1} (got {bar})")
    return bar


def _drive_until(run: PreparedRun, mode: Mode, bar: int) -> None:
    """Drive the run over bars [current, bar): the loop sees the bars' arrays end at ``bar``."""
    full = run.driver.state
    run.driver.state = full._replace(
        # The first rows of the Fortran-order cube are no longer one block: copied (once a
        # pause), so that the loop gets the one array layout it is compiled for.
        ohlcv=np.asfortranarray(full.ohlcv[:bar]),
        times=full.times[:bar],
        funding=full.funding[:bar] if full.funding.shape[0] else full.funding,
        signals=full.signals[:bar] if full.signals.shape[0] else full.signals,
        lows=full.lows[:bar] if full.lows.shape[0] else full.lows,
        highs=full.highs[:bar] if full.highs.shape[0] else full.highs,
    )
    run.drive(mode)
    grown = run.driver.state
    run.driver.state = grown._replace(
        ohlcv=full.ohlcv,
        times=full.times,
        funding=full.funding,
        signals=full.signals,
        lows=full.lows,
        highs=full.highs,
    )
    run.driver.state.counters[S.C_ENDED] = 0


def _capture(
    run: PreparedRun,
    bar: int,
    mode: Mode,
    settings: Mapping[str, Any],
    instruments: dict[str, dict[str, Any]] | None,
    symbol: str,
) -> Checkpoint:
    strategy = run.strategy
    assert isinstance(strategy, KernelStrategy)
    st = run.driver.state
    venue = {
        name: np.array(getattr(st, name)) for name in S.SimState._fields if name not in _INPUTS
    }
    # Rows past a log's counter were never written (simulator.nb.alloc.reset_nb): whatever
    # memory held before. A checkpoint keeps zeros there, not that.
    for log, counter in _LOG_COUNTERS:
        venue[log][int(venue["counters"][counter]) :] = 0
    elapsed = run.elapsed_ms + (time.perf_counter() - run.started) * 1e3
    return Checkpoint(
        bar=bar,
        time=str(run.market.index[bar]),
        strategy=type(strategy).__name__,
        kernel_params=np.ascontiguousarray(strategy.params, dtype=np.float64).copy(),
        kernel_state=strategy.state.copy(),
        venue=venue,
        settings=dict(settings),
        instruments=instruments,
        symbol=symbol,
        initial_pos=run.initial_pos.copy(),
        data_digest=data_digest(run.market),
        mode=mode,
        elapsed_ms=elapsed,
    )


def _instrument_dumps(
    instrument: Instrument | Mapping[str, Instrument] | None,
) -> dict[str, dict[str, Any]] | None:
    if instrument is None:
        return None
    if isinstance(instrument, Instrument):
        return {"": instrument.model_dump(mode="json")}
    return {sym: inst.model_dump(mode="json") for sym, inst in instrument.items()}


def _instruments_from(
    dumps: dict[str, dict[str, Any]] | None,
) -> Instrument | dict[str, Instrument] | None:
    if dumps is None:
        return None
    if set(dumps) == {""}:
        return Instrument.model_validate(dumps[""])
    return {sym: Instrument.model_validate(d) for sym, d in dumps.items()}
