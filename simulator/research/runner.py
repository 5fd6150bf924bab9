"""``run_sweep``: a grid, random or Optuna search over a strategy's parameters, run in chunks
(in-process or on Dask), saved to a resumable sweep folder, returned ranked by an objective.

Everything that can be refused is refused before anything runs: the space against the config
model, every grid or random combination against the model (cross-field rules included), the
objective against the metric columns, the simulator settings. Combination ids are positions
in the grid or in the random draw (or trial numbers for Optuna), so a resumed sweep skips the
ids its folder already holds, and rows from anywhere are put back in id order.
"""

from __future__ import annotations

import hashlib
import math
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from tqdm import tqdm  # type: ignore[import-untyped]

from simulator.config import SimConfig
from simulator.research.chunk import (
    Chunk,
    Engine,
    Job,
    assemble,
    chunks,
    engine_for,
    metric_names,
    strategy_of,
)
from simulator.research.distributed import Executor, executor
from simulator.research.space import Space, parse_space
from simulator.research.store import COMBO, SweepStore
from tradetower.domain.bars import MarketData
from tradetower.domain.instrument import Instrument
from tradetower.errors import ConfigError

Method = Literal["grid", "random", "optuna"]
METHODS: tuple[str, ...] = ("grid", "random", "optuna")
DEFAULT_OBJECTIVE = "return_pct"
"""The compiled sweep reduces each run to final equity, return, drawdown, fills, orders, fees
and exposure (no Sharpe ratio: that needs the daily equity curve the reduction does not keep)."""
DEFAULT_BATCH = 8
"""Optuna trials asked at once (fixed, so results never depend on the machine's core count)."""
SpaceLike = Space | Iterable[str] | Mapping[str, Any]


@dataclass(frozen=True)
class Objective:
    """The metric a sweep ranks by; a leading ``-`` minimises it."""

    metric: str
    maximize: bool = True

    @classmethod
    def parse(cls, text: str, metrics: Sequence[str]) -> Objective:
        name = text.strip().removeprefix("-")
        if name not in metrics:
            raise ConfigError(
                "objective",
                f"objective '{text}' is not a metric of this sweep (one of: {', '.join(metrics)};"
                " prefix with '-' to minimise)",
            )
        return cls(name, not text.strip().startswith("-"))

    def __str__(self) -> str:
        return self.metric if self.maximize else f"-{self.metric}"


def run_sweep(
    strategy: str | type[Any],
    space: SpaceLike,
    data: Any,
    *,
    method: Method | str = "grid",
    n_trials: int | None = None,
    seed: int = 0,
    objective: str = DEFAULT_OBJECTIVE,
    base: Mapping[str, Any] | None = None,
    chunk_size: int | None = None,
    folder: str | Path | None = None,
    resume: bool = True,
    scheduler: str | None = None,
    progress: bool = True,
    data_source: Mapping[str, Any] | None = None,
    instrument: Instrument | Mapping[str, Instrument] | None = None,
    symbol: str = "ASSET",
    **settings: Any,
) -> pd.DataFrame:
    """Sweep ``strategy`` (a registry name or class) over ``space`` on ``data``.

    Args:
        space: ``name=spec`` strings, a mapping of name to spec or values, or a :class:`Space`
            (see :mod:`simulator.research.space`).
        method: ``grid`` (every combination), ``random`` (``n_trials`` draws from ``seed``) or
            ``optuna`` (``n_trials`` TPE trials from ``seed``, in batches of ``chunk_size``).
        objective: the metric to rank by (``-name`` minimises).
        base: fixed parameters every combination shares.
        chunk_size: combinations per chunk (each chunk is one unit of work and of resuming).
        folder: the sweep folder (``results.parquet`` + ``sweep.json``); ``None`` keeps nothing.
        resume: continue the sweep already in ``folder`` (skip its finished combinations).
        scheduler: a Dask scheduler address, ``"local"`` for a ``LocalCluster``, ``""`` for
            this process, or ``None``: ``$TRADETOWER_DASK_SCHEDULER`` when set, else this
            process.
        data_source: how to load ``data`` again, recorded in ``sweep.json`` (e.g. ``{"venue":
            ..., "symbol": ..., "timeframe": ..., "start": ..., "end": ...}``).
        settings: simulator settings (:class:`simulator.config.SimConfig` fields).

    Returns:
        One row per combination, best first: ``rank``, ``combo``, the parameters, the metrics.
        ``attrs`` holds ``objective``, ``folder``, ``ran`` (combinations evaluated by this call)
        and ``reused`` (taken from the folder).

    Raises:
        ConfigError: a bad space, combination, objective, method, setting or folder, before
            anything runs.
    """
    started = time.perf_counter()
    name, cls = strategy_of(strategy)
    config_cls = getattr(cls, "Config", None)
    if config_cls is None:
        raise ConfigError("strategy", f"{name} has no Config model to sweep")
    market = MarketData.coerce(data, symbol)
    SimConfig.parse(settings)
    parsed = parse_space(config_cls, space)
    metrics = metric_names(cls)
    goal = Objective.parse(objective, metrics)
    fixed = dict(base or {})
    method = _check_method(method, n_trials)
    size = _chunk_size(chunk_size, method, parsed, n_trials)
    combos: list[dict[str, Any]] = []
    engine: Engine | None = None
    if method != "optuna":
        combos = parsed.grid() if method == "grid" else parsed.sample(n_trials or 0, seed)
        first = validate(config_cls, fixed, combos)
        engine = engine_for(cls, first, market)
    store = SweepStore(folder) if folder is not None else None
    meta: dict[str, Any] = {
        "strategy": name,
        "params": parsed.names,
        "metrics": list(metrics),
        "base": fixed,
        "space": parsed.to_json(),
        "data": describe_data(data, market, data_source),
        "method": method,
        "seed": seed,
        "trials": n_trials,
        "objective": str(goal),
        "sim": {**settings, "symbol": symbol, "instrument": _instrument_json(instrument)},
        "chunk_size": size,
    }
    if method == "optuna":
        meta["optuna"] = {"objective": str(goal), "batch": size}
    in_memory = data_source is None and not isinstance(data, str | Path)
    if store is not None and in_memory:
        meta["data"] = {**meta["data"], **bar_files(market, store.folder)}
    done = _normalise(store.start(meta, resume=resume), parsed) if store else pd.DataFrame()
    if store is not None and in_memory:
        save_bars(market, store.folder)
    job = Job(
        strategy=_portable(name, cls),
        params=tuple(parsed.names),
        metrics=metrics,
        engine=engine or "sweep",
        base=fixed,
        settings=dict(settings),
        instrument=instrument,
    )
    total = len(combos) if method != "optuna" else int(n_trials or 0)
    with (
        executor(market, scheduler) as ex,
        tqdm(
            total=total,
            initial=len(done),
            desc=f"sweep {name}",
            unit="combo",
            delay=1.0,
            disable=not progress,
            file=sys.stderr,
        ) as bar,
    ):
        save = _Saver(store, done, bar)
        if method == "optuna":
            frame = _optuna(ex, job, parsed, config_cls, cls, market, goal, seed, total, size, save)
        else:
            ids = range(len(combos))
            frame = _grid(ex, job, ids, combos, size, save)
    ranked = rank(_normalise(frame, parsed), goal)
    ranked.attrs.update(
        objective=str(goal),
        folder=str(store.folder) if store else None,
        ran=save.ran,
        reused=len(done),
        elapsed_s=time.perf_counter() - started,
    )
    return ranked


# --------------------------------------------------------------------------- pieces


def validate(config_cls: Any, base: Mapping[str, Any], combos: Sequence[Mapping[str, Any]]) -> Any:
    """Parse every combination over ``base``; the first config back, or a ConfigError naming
    the first combination the model refuses."""
    if not combos:
        raise ConfigError("grid", "the sweep has no combinations")
    first = None
    for j, combo in enumerate(combos):
        try:
            config = config_cls.parse({**base, **combo})
        except ConfigError as exc:
            raise ConfigError(exc.field, f"combination {j} {dict(combo)}: {exc}") from None
        first = config if first is None else first
    return first


def rank(frame: pd.DataFrame, goal: Objective) -> pd.DataFrame:
    """Best first by ``goal`` (NaN last, ties by combination id), with a ``rank`` column."""
    ordered = frame.sort_values(
        [goal.metric, COMBO],
        ascending=[not goal.maximize, True],
        na_position="last",
        kind="stable",
    ).reset_index(drop=True)
    ordered.insert(0, "rank", np.arange(1, len(ordered) + 1, dtype=np.int64))
    return ordered


def describe_data(
    data: Any, market: MarketData, source: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``sweep.json``'s ``data``: how to load the bars again, and what they were."""
    where: dict[str, Any]
    if source is not None:
        where = dict(source)
    elif isinstance(data, str | Path):
        where = {"path": str(Path(data).resolve())}
    else:
        where = {"path": None}
    digest = hashlib.sha256(np.ascontiguousarray(market.ohlcv).tobytes()).hexdigest()
    return {
        **where,
        "symbols": list(market.symbols),
        "bars": market.n_bars,
        "first": market.index[0].isoformat(),
        "last": market.index[-1].isoformat(),
        "sha256": digest,
    }


def bar_files(market: MarketData, folder: Path) -> dict[str, Any]:
    """Where bars given in memory are written beside the results (``save_bars``)."""
    if len(market.symbols) == 1:
        return {"path": str((folder / "bars.parquet").resolve())}
    return {
        "paths": {
            s: str((folder / f"bars-{i}.parquet").resolve()) for i, s in enumerate(market.symbols)
        }
    }


def save_bars(market: MarketData, folder: Path) -> None:
    """Write bars given in memory beside the results, so the sweep can be loaded again."""
    files = bar_files(market, folder)
    paths = files.get("paths") or {market.symbols[0]: files["path"]}
    for sym, path in paths.items():
        market.frame(sym).to_parquet(path)


def _check_method(method: str, n_trials: int | None) -> Method:
    if method not in METHODS:
        raise ConfigError("method", f"method '{method}' is not one of {', '.join(METHODS)}")
    if method == "grid" and n_trials is not None:
        raise ConfigError(
            "trials", "trials: a grid runs every combination; trials apply to random and optuna"
        )
    if method != "grid" and (n_trials is None or n_trials < 1):
        raise ConfigError("trials", f"trials: method {method} needs a number of trials ≥ 1")
    return method  # type: ignore[return-value]


def _chunk_size(size: int | None, method: str, space: Space, n_trials: int | None) -> int:
    if size is not None:
        if size < 1:
            raise ConfigError("chunk_size", f"chunk_size: must be ≥ 1 (got {size})")
        return size
    if method == "optuna":
        return DEFAULT_BATCH
    total = space.size() if method == "grid" else n_trials
    return max(1, min(1_000, math.ceil((total or 1) / 32)))


def _portable(name: str, cls: type[Any]) -> str | type[Any]:
    """The registry name when it names this class (cheap to ship to workers), else the class."""
    from strategies import REGISTRY, strategy_class

    return name if name in REGISTRY and strategy_class(name) is cls else cls


def _instrument_json(instrument: Instrument | Mapping[str, Instrument] | None) -> Any:
    if instrument is None:
        return None
    if isinstance(instrument, Instrument):
        return instrument.model_dump(mode="json")
    return {sym: inst.model_dump(mode="json") for sym, inst in instrument.items()}


_KIND_DTYPES: dict[str, Any] = {"int": "int64", "float": "float64", "bool": "bool", "text": "str"}


def _normalise(frame: pd.DataFrame, space: Space) -> pd.DataFrame:
    """One dtype per column whatever the rows' origin (fresh, from Parquet, from a worker)."""
    if frame.empty:
        return frame
    out = frame.sort_values(COMBO, kind="stable").reset_index(drop=True)
    out[COMBO] = out[COMBO].astype("int64")
    for dim in space.dimensions:
        out[dim.name] = out[dim.name].astype(_KIND_DTYPES[dim.kind])
    for column in out.columns[len(space.dimensions) + 1 :]:
        out[column] = out[column].astype("float64")
    return out


class _Saver:
    """Collects finished chunks; rewrites the sweep folder's results after each."""

    def __init__(self, store: SweepStore | None, done: pd.DataFrame, bar: Any) -> None:
        self.store = store
        self.parts = [done] if len(done) else []
        self.bar = bar
        self.ran = 0

    def __call__(self, frames: Sequence[pd.DataFrame]) -> None:
        self.parts.extend(frames)
        added = sum(len(f) for f in frames)
        self.ran += added
        if self.store is not None:
            self.store.save(pd.concat(self.parts, ignore_index=True))
        self.bar.update(added)

    def finished_ids(self) -> set[int]:
        return {int(i) for part in self.parts for i in part[COMBO]}

    def frame(self) -> pd.DataFrame:
        return pd.concat(self.parts, ignore_index=True) if self.parts else pd.DataFrame()


def _grid(
    ex: Executor,
    job: Job,
    ids: Sequence[int],
    combos: Sequence[dict[str, Any]],
    size: int,
    save: _Saver,
) -> pd.DataFrame:
    finished = save.finished_ids()
    todo = [j for j in ids if j not in finished]
    for _, frame in ex.run(job, chunks(todo, [combos[j] for j in todo], size)):
        save([frame])
    return save.frame()


def _optuna(
    ex: Executor,
    job: Job,
    space: Space,
    config_cls: Any,
    cls: type[Any],
    market: MarketData,
    goal: Objective,
    seed: int,
    n_trials: int,
    batch: int,
    save: _Saver,
) -> pd.DataFrame:
    from simulator.research.optimize import TpeSearch

    search = TpeSearch(space, maximize=goal.maximize, seed=seed)
    replayed = save.frame()
    for row in replayed.to_dict("records"):
        search.replay({n: row[n] for n in space.names}, float(row[goal.metric]))
    start = len(replayed)
    engine: Engine | None = None
    if start % batch and start < n_trials:
        raise ConfigError("out", "the sweep folder holds a partial Optuna batch; start afresh")
    for b in range(start // batch, math.ceil(n_trials / batch)):
        ids = list(range(b * batch, min(n_trials, (b + 1) * batch)))
        trials = search.ask(b, len(ids))
        combos = [{n: trial.params[n] for n in space.names} for trial in trials]
        valid = [j for j, combo in enumerate(combos) if _accepts(config_cls, job.base, combo)]
        if valid and engine is None:
            engine = engine_for(cls, config_cls.parse({**job.base, **combos[valid[0]]}), market)
            job = replace(job, engine=engine)
        metrics = np.full((len(ids), len(job.metrics)), np.nan)
        if valid:
            per = math.ceil(len(valid) / ex.parallelism)
            todo = chunks([ids[j] for j in valid], [combos[j] for j in valid], per)
            for chunk, frame in ex.run(job, todo):
                rows = [ids.index(i) for i in chunk.ids]
                metrics[rows] = frame[list(job.metrics)].to_numpy(dtype=np.float64)
        column = job.metrics.index(goal.metric)
        for trial, value in zip(trials, metrics[:, column], strict=True):
            search.tell(trial, float(value))
        save([assemble(job, Chunk(tuple(ids), tuple(combos)), metrics)])
    return save.frame()


def _accepts(config_cls: Any, base: Mapping[str, Any], combo: Mapping[str, Any]) -> bool:
    try:
        config_cls.parse({**base, **combo})
    except ConfigError:
        return False
    return True
