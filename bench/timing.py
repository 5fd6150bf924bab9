"""Timing: one warm-up call (compile or cache load, plus a run), then the best of N calls.

Wall time (``time.perf_counter``) is the figure. CPU time (this process and its finished
children, user + system) is recorded beside it: on a shared two-core machine it moves much less
with other people's load than wall time does, so it tells a busy machine from a slow run.
"""

from __future__ import annotations

import gc
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass
class Measurement:
    """One peer's figures in one case. Times are seconds."""

    peer: str
    first_s: float | None
    """The first call in this process: numba compile (or cache load) plus one run."""
    best_s: float
    """Best wall time of ``runs`` calls after the first."""
    median_s: float
    runs: int
    cpu_best_s: float | None = None
    """Best CPU time (process and children, user + system) of the same calls."""
    count: int | None = None
    """Trades (SMA case) or fills (grid case) this peer produced."""
    equity: float | None = None
    """Final equity, to show the peers did the same work."""
    bars: int = 0
    """Bars actually run; differs from the case's bars when a slow peer is scaled."""
    scale: float = 1.0
    """Times were multiplied by this (a slow peer run on a slice and scaled linearly)."""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Timed(Generic[T]):
    first_s: float
    times: list[float]
    cpu: list[float]
    last: T
    outputs: list[T]

    @property
    def best_s(self) -> float:
        return min(self.times)

    @property
    def median_s(self) -> float:
        return statistics.median(self.times)


def cpu_now() -> float:
    """CPU seconds used so far by this process and its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def once(fn: Callable[[], T]) -> tuple[float, float, T]:
    """(wall seconds, CPU seconds, result) of one call, with the garbage collector paused."""
    gc.collect()
    gc.disable()
    try:
        c0 = cpu_now()
        t0 = time.perf_counter()
        out = fn()
        elapsed = time.perf_counter() - t0
        cpu = cpu_now() - c0
    finally:
        gc.enable()
    return elapsed, cpu, out


def timed(fn: Callable[[], T], repeat: int) -> Timed[T]:
    """Call ``fn`` once as a warm-up (timed on its own), then ``repeat`` times."""
    first, _, _ = once(fn)
    times: list[float] = []
    cpu: list[float] = []
    outputs: list[T] = []
    for _ in range(max(1, repeat)):
        t, c, out = once(fn)
        times.append(t)
        cpu.append(c)
        outputs.append(out)
    return Timed(first_s=first, times=times, cpu=cpu, last=outputs[-1], outputs=outputs)


def measurement(peer: str, t: Timed[Any], bars: int, **fields: Any) -> Measurement:
    return Measurement(
        peer=peer,
        first_s=t.first_s,
        best_s=t.best_s,
        median_s=t.median_s,
        runs=len(t.times),
        cpu_best_s=min(t.cpu),
        bars=bars,
        **fields,
    )
