"""Drivers: the Python path (one fused numba step per event) and the compiled path."""

from __future__ import annotations

import weakref
from collections.abc import Callable

import numpy as np

from simulator import state as S
from simulator.nb.loop import finish_nb, step_nb
from simulator.nb.orders import apply_actions_nb
from tradetower import kernel_abi as K
from tradetower.domain.instrument import Instrument
from tradetower.errors import TradeTowerError
from tradetower.strategy import EVENT_NAMES, KernelStrategy, Strategy


class StrategyError(TradeTowerError):
    """A strategy's own code raised; the run stops and says where."""


def actions_overflow(kernel: Callable[..., int], rows: int) -> StrategyError:
    """A kernel asked for more action rows in one event than ``max_actions``; the helpers of
    :mod:`tradetower.kernel_tools` counted the rows they had no room for without writing them."""
    name = getattr(kernel, "__name__", "the strategy's kernel")
    return StrategyError(
        f"{name} needed more than max_actions={rows} action rows for one event; "
        "raise max_actions (a backtest setting: backtest(..., max_actions=N))"
    )


class SimContext:
    """The simulator's :class:`~tradetower.strategy.StrategyContext`.

    Actions go into the action buffer and take effect when the strategy returns, as they would
    at a venue; ids are assigned in order, so ``place`` can return the id at once.
    """

    def __init__(self, driver: Driver) -> None:
        # A weak reference: the driver owns its context, and a cycle between the two would keep
        # the whole venue state (the bars, the logs: tens of MB for a year of minutes) alive
        # after the run until the cyclic garbage collector next gets round to it.
        self._d: Driver = weakref.proxy(driver)
        self.symbols = driver.symbols

    # --- helpers ---
    def _inst(self, symbol: str | None) -> int:
        if symbol is None:
            return 0
        try:
            return self.symbols.index(symbol)
        except ValueError:
            raise StrategyError(f"unknown symbol {symbol!r}; this run has {self.symbols}") from None

    def _row(self, kind: int) -> np.ndarray:
        d = self._d
        if d.n_actions >= d.actions.shape[0]:
            raise StrategyError(
                f"more than {d.actions.shape[0]} actions in one event; raise max_actions"
            )
        row: np.ndarray = d.actions[d.n_actions]
        row[:] = 0.0
        row[K.A_KIND] = kind
        d.n_actions += 1
        return row

    def _next_id(self, counter: int, kinds: tuple[int, ...]) -> int:
        """The id the venue will assign: its counter plus same-kind actions queued before."""
        d = self._d
        kind_col = d.actions[:, K.A_KIND]
        queued = sum(1 for r in range(d.n_actions - 1) if kind_col[r] in kinds)
        return int(d.state.counters[counter]) + queued

    # --- actions ---
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
    ) -> int:
        row = self._row(K.A_PLACE)
        row[K.A_INST] = self._inst(symbol)
        row[K.A_SIDE] = 1.0 if side > 0 else -1.0
        row[K.A_TYPE] = type
        row[K.A_PRICE] = price
        row[K.A_QTY] = qty
        row[K.A_TIF] = tif
        row[K.A_REDUCE_ONLY] = 1.0 if reduce_only else 0.0
        row[K.A_TAG] = tag
        row[K.A_SIZE_MODE] = K.SIZE_FRACTION if fraction else K.SIZE_UNITS
        return self._next_id(S.C_N_ORDERS, (K.A_PLACE,))

    def buy(self, qty: float, **kw: object) -> int:
        return self.place(K.BUY, qty, **kw)  # type: ignore[arg-type]

    def sell(self, qty: float, **kw: object) -> int:
        return self.place(K.SELL, qty, **kw)  # type: ignore[arg-type]

    def cancel(self, order_id: int) -> None:
        self._row(K.A_CANCEL)[K.A_ID] = order_id

    def cancel_all(self, symbol: str | None = None) -> None:
        self._row(K.A_CANCEL_ALL)[K.A_INST] = -1 if symbol is None else self._inst(symbol)

    def arm_cross(
        self, price: float, direction: int, *, symbol: str | None = None, tag: int = 0
    ) -> int:
        row = self._row(K.A_ARM_CROSS)
        row[K.A_INST] = self._inst(symbol)
        row[K.A_SIDE] = 1.0 if direction > 0 else -1.0
        row[K.A_PRICE] = price
        row[K.A_TAG] = tag
        return self._next_id(S.C_N_TRIG, (K.A_ARM_CROSS, K.A_ARM_TRAILING))

    def arm_trailing(
        self,
        reference: float,
        distance: float,
        direction: int = 1,
        *,
        symbol: str | None = None,
        tag: int = 0,
    ) -> int:
        row = self._row(K.A_ARM_TRAILING)
        row[K.A_INST] = self._inst(symbol)
        row[K.A_SIDE] = 1.0 if direction > 0 else -1.0
        row[K.A_PRICE] = reference
        row[K.A_QTY] = distance
        row[K.A_TAG] = tag
        return self._next_id(S.C_N_TRIG, (K.A_ARM_CROSS, K.A_ARM_TRAILING))

    def disarm(self, trigger_id: int) -> None:
        self._row(K.A_DISARM)[K.A_ID] = trigger_id

    def set_timer(self, at_ms: int, *, tag: int = 0) -> int:
        row = self._row(K.A_SET_TIMER)
        row[K.A_ID] = at_ms
        row[K.A_TAG] = tag
        return self._next_id(S.C_N_TIMERS, (K.A_SET_TIMER,))

    def run_kernel(
        self, kernel: Callable[..., int], params: np.ndarray, state: np.ndarray, event: np.ndarray
    ) -> int:
        d = self._d
        n = int(kernel(params, state, event, d.actions[d.n_actions :]))
        if d.n_actions + n > d.actions.shape[0]:
            raise actions_overflow(kernel, d.actions.shape[0])
        d.n_actions += n
        return n

    # --- reads ---
    def position(self, symbol: str | None = None) -> float:
        return float(self._d.state.pos[self._inst(symbol), S.PS_QTY])

    def avg_price(self, symbol: str | None = None) -> float:
        return float(self._d.state.pos[self._inst(symbol), S.PS_AVG])

    def price(self, symbol: str | None = None) -> float:
        return float(self._d.state.pos[self._inst(symbol), S.PS_MARK])

    def instrument(self, symbol: str | None = None) -> Instrument:
        return self._d.instruments[self._inst(symbol)]

    @property
    def cash(self) -> float:
        return float(self._d.state.account[S.AC_CASH])

    @property
    def free_cash(self) -> float:
        a = self._d.state.account
        return float(a[S.AC_CASH] - a[S.AC_LOCKED])

    @property
    def equity(self) -> float:
        st = self._d.state
        held = st.pos[:, S.PS_QTY] != 0
        return float(
            st.account[S.AC_CASH] + (st.pos[held, S.PS_QTY] * st.pos[held, S.PS_MARK]).sum()
        )

    @property
    def now_ms(self) -> int:
        st = self._d.state
        t = min(int(st.counters[S.C_BAR]), st.times.shape[0] - 1)
        mul, div = (int(x) for x in st.time_scale)
        return int(st.times[t]) * mul // div

    @property
    def bar_index(self) -> int:
        return int(self._d.state.counters[S.C_BAR])


class Driver:
    """Runs one strategy over one simulated venue state."""

    def __init__(
        self,
        state: S.SimState,
        strategy: Strategy,
        symbols: tuple[str, ...],
        instruments: tuple[Instrument, ...],
    ) -> None:
        self.state = state
        self.strategy = strategy
        self.symbols = symbols
        self.instruments = instruments
        self.actions = np.zeros((int(state.params[S.P_MAX_ACTIONS]), K.N_ACTION))
        self.n_actions = 0
        self.event = np.zeros(K.N_EVENT)
        self.ctx = SimContext(self)
        self.n_events = 0

    def _dispatch(self) -> None:
        try:
            self.strategy.handle(self.ctx, self.event)
        except TradeTowerError:
            raise
        except Exception as exc:
            kind = EVENT_NAMES.get(int(self.event[K.E_TYPE]), "event")
            bar = int(self.event[K.E_BAR])
            raise StrategyError(
                f"{type(self.strategy).__name__} raised in on_{kind} at bar {bar}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self.n_events += 1

    def run_python(self) -> None:
        """Re-enter numba once per event; the strategy's callbacks run in Python."""
        while True:
            et = step_nb(self.state, self.actions, self.n_actions, self.event)
            self.n_actions = 0
            if et == K.EV_BUFFER_FULL:
                self.state = S.grow(self.state)
                continue
            if et == K.EV_END:
                break
            self._dispatch()

    def run_compiled(self) -> None:
        """Stay inside numba for the whole run (kernel strategies only)."""
        from simulator.nb.compiled import run_kernel_nb

        strategy = self.strategy
        if not isinstance(strategy, KernelStrategy):
            raise TypeError(f"{type(strategy).__name__} has no compiled kernel")
        kernel = type(strategy).kernel
        params = np.ascontiguousarray(strategy.params, dtype=np.float64)
        wanted = strategy.event_mask()
        while True:
            et = run_kernel_nb(
                self.state, kernel, params, strategy.state, self.event, self.actions, wanted
            )
            if et == K.EV_BUFFER_FULL:
                self.state = S.grow(self.state)
                continue
            if et == K.EV_ACTIONS_OVERFLOW:
                raise actions_overflow(kernel, self.actions.shape[0])
            break

    def stop(self, close_positions: bool) -> None:
        """Deliver on_stop, carry out its actions, then cancel what rests and maybe close out."""
        self.event[:] = 0.0
        self.event[K.E_TYPE] = K.EV_STOP
        self.event[K.E_BAR] = self.state.times.shape[0] - 1
        self.n_actions = 0
        self._dispatch()
        if self.n_actions:
            if self.state.orders.shape[0] <= self.state.counters[S.C_N_ORDERS] + self.n_actions:
                self.state = S.grow(self.state)
            apply_actions_nb(self.state, self.actions, self.n_actions)
            self.n_actions = 0
        finish_nb(self.state, close_positions)
