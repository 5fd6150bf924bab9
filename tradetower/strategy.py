"""The Strategy API: what a strategy may override, and the context it acts through.

A strategy reacts to events and never knows whether it runs in a backtest or live; the venue
hands it a :class:`StrategyContext`. Two forms share this API:

* plain Python: override the ``on_*`` methods you need;
* compiled: subclass :class:`KernelStrategy` and supply a numba ``on_event_nb`` with the
  signature of :mod:`tradetower.kernel_abi`; the simulator can then run it without leaving
  numba, and any other venue calls the same function through :meth:`KernelStrategy.handle`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from tradetower import kernel_abi as K
from tradetower.domain.instrument import Instrument

if TYPE_CHECKING:
    from tradetower.domain.bars import MarketData

EVENT_NAMES = {
    K.EV_START: "start",
    K.EV_FILL: "fill",
    K.EV_CANCEL: "cancel",
    K.EV_TRIGGER: "trigger",
    K.EV_TIMER: "timer",
    K.EV_SIGNAL: "signal",
    K.EV_BAR: "bar",
    K.EV_STOP: "stop",
}


@dataclass(frozen=True, slots=True)
class Event:
    """One event, decoded from an ABI event row for Python strategies."""

    kind: str
    bar: int
    time_ms: int
    symbol: str | None
    id: int
    side: int
    price: float
    qty: float
    fee: float
    code: int
    remaining: float
    tag: int
    position: float
    cash: float
    equity: float

    @property
    def is_liquidation(self) -> bool:
        return self.kind == "fill" and self.code == 1

    @property
    def order_done(self) -> bool:
        return self.remaining <= 0.0

    @classmethod
    def decode(cls, row: np.ndarray, symbols: tuple[str, ...]) -> Event:
        i = int(row[K.E_INST])
        return cls(
            kind=EVENT_NAMES.get(int(row[K.E_TYPE]), "unknown"),
            bar=int(row[K.E_BAR]),
            time_ms=int(row[K.E_TIME]),
            symbol=symbols[i] if 0 <= i < len(symbols) else None,
            id=int(row[K.E_ID]),
            side=int(row[K.E_SIDE]),
            price=float(row[K.E_PRICE]),
            qty=float(row[K.E_QTY]),
            fee=float(row[K.E_FEE]),
            code=int(row[K.E_CODE]),
            remaining=float(row[K.E_REMAINING]),
            tag=int(row[K.E_TAG]),
            position=float(row[K.E_POS_QTY]),
            cash=float(row[K.E_CASH]),
            equity=float(row[K.E_EQUITY]),
        )


class StrategyContext(Protocol):
    """What a strategy can do and read. The simulator and the live runner implement it."""

    symbols: tuple[str, ...]

    def place(
        self,
        side: int,
        qty: float,
        *,
        symbol: str | None = None,
        type: int = K.MARKET,
        price: float = float("nan"),
        tif: int = K.GTC,
        reduce_only: bool = False,
        tag: int = 0,
        fraction: bool = False,
    ) -> int: ...

    def cancel(self, order_id: int) -> None: ...

    def cancel_all(self, symbol: str | None = None) -> None: ...

    def arm_cross(
        self, price: float, direction: int, *, symbol: str | None = None, tag: int = 0
    ) -> int: ...

    def arm_trailing(
        self,
        reference: float,
        distance: float,
        direction: int = 1,
        *,
        symbol: str | None = None,
        tag: int = 0,
    ) -> int: ...

    def disarm(self, trigger_id: int) -> None: ...

    def set_timer(self, at_ms: int, *, tag: int = 0) -> int: ...

    def position(self, symbol: str | None = None) -> float: ...

    def avg_price(self, symbol: str | None = None) -> float: ...

    def price(self, symbol: str | None = None) -> float: ...

    def instrument(self, symbol: str | None = None) -> Instrument: ...

    @property
    def cash(self) -> float: ...

    @property
    def free_cash(self) -> float: ...

    @property
    def equity(self) -> float: ...

    @property
    def now_ms(self) -> int: ...

    def run_kernel(
        self, kernel: Callable[..., int], params: np.ndarray, state: np.ndarray, event: np.ndarray
    ) -> int: ...


class Strategy:
    """Base class of every strategy. Override only the callbacks you need.

    ``signals`` computes indicator conditions vectorised, up front: it returns integer codes,
    one per bar (and instrument), 0 meaning nothing; each non-zero code reaches ``on_signal``
    at the close of its bar. Orders placed in any callback act from the next bar.
    """

    name: ClassVar[str] = "strategy"
    wants_bars: ClassVar[bool] = False

    def signals(self, data: MarketData) -> np.ndarray | None:
        return None

    def on_start(self, ctx: StrategyContext) -> None:
        pass

    def on_fill(self, ctx: StrategyContext, event: Event) -> None:
        pass

    def on_cancel(self, ctx: StrategyContext, event: Event) -> None:
        pass

    def on_trigger(self, ctx: StrategyContext, event: Event) -> None:
        pass

    def on_timer(self, ctx: StrategyContext, event: Event) -> None:
        pass

    def on_signal(self, ctx: StrategyContext, event: Event) -> None:
        pass

    def on_bar(self, ctx: StrategyContext, event: Event) -> None:
        pass

    def on_stop(self, ctx: StrategyContext) -> None:
        pass

    def metrics(self) -> dict[str, Any]:
        """Strategy-specific figures added to a run's metrics."""
        return {}

    def handle(self, ctx: StrategyContext, row: np.ndarray) -> None:
        """Dispatch one ABI event row to the matching callback."""
        kind = int(row[K.E_TYPE])
        if kind == K.EV_START:
            self.on_start(ctx)
        elif kind == K.EV_STOP:
            self.on_stop(ctx)
        else:
            event = Event.decode(row, ctx.symbols)
            callback = _CALLBACKS.get(kind)
            if callback is not None:
                getattr(self, callback)(ctx, event)


_CALLBACKS = {
    K.EV_FILL: "on_fill",
    K.EV_CANCEL: "on_cancel",
    K.EV_TRIGGER: "on_trigger",
    K.EV_TIMER: "on_timer",
    K.EV_SIGNAL: "on_signal",
    K.EV_BAR: "on_bar",
}


class KernelStrategy(Strategy):
    """A strategy whose decisions are one compiled function (see :mod:`tradetower.kernel_abi`).

    Subclasses provide ``kernel`` (an ``@njit`` function with the ABI signature), and build
    ``params`` (float64 vector) and ``initial_state()`` (float64 vector the kernel mutates).
    """

    kernel: ClassVar[Callable[..., int]]
    kernel_events: ClassVar[tuple[int, ...] | None] = None
    """The event types (``kernel_abi.EV_*``) the kernel acts on; ``None``: every one. The
    others are not delivered at all, in the compiled loop as in the Python paths: a kernel that
    would return 0 for them anyway saves a call per event (an SMA crossover acts on signals
    alone, not on its fills)."""

    @classmethod
    def event_mask(cls) -> int:
        """``kernel_events`` as the bit mask the loops test (:func:`kernel_abi.event_mask`)."""
        return K.event_mask(cls.kernel_events)

    def __init__(self) -> None:
        self.state = np.zeros(0)
        self._params_vector: np.ndarray | None = None
        self._wanted = K.ALL_EVENTS

    @property
    def params(self) -> np.ndarray:
        raise NotImplementedError

    def initial_state(self, data: MarketData) -> np.ndarray:
        raise NotImplementedError

    def prepare(self, data: MarketData) -> None:
        """Reset the kernel state for a new run over ``data``."""
        self.state = np.ascontiguousarray(self.initial_state(data), dtype=np.float64)
        self._params_vector = None

    def handle(self, ctx: StrategyContext, row: np.ndarray) -> None:
        # params are fixed for a run: build the vector (and the event mask) once, after prepare
        # and any check.
        if self._params_vector is None:
            self._params_vector = np.ascontiguousarray(self.params, dtype=np.float64)
            self._wanted = self.event_mask()
        if not K.wants_event(self._wanted, int(row[K.E_TYPE])):
            return
        ctx.run_kernel(type(self).kernel, self._params_vector, self.state, row)
