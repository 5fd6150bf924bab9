"""The simulated exchange behind the connector protocol.

It serves what a live runner needs from a venue (orders by client order id, balances,
positions, fills, an order-event stream, candles) from the same numba state the backtest
engine uses, with a clock that moves one bar per :meth:`SimulatedExchange.advance`. So a
runner, a paper venue or the shared connector contract tests can drive the simulator exactly
as they drive a broker. Nothing later than the current bar is ever visible.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from simulator import state as S
from simulator.config import SimConfig
from simulator.engine import instrument_table, sim_params
from simulator.nb.loop import step_nb
from simulator.nb.orders import apply_actions_nb, cancel_order_nb
from tradetower import kernel_abi as K
from tradetower.connector import (
    AccountInfo,
    AccountType,
    Balance,
    HealthStatus,
    MarketSession,
    MarketStatus,
    OrderEvent,
    OrderPreview,
    RegulatoryInfo,
    SessionStatus,
    Tick,
    TradingSession,
)
from tradetower.domain import (
    Bar,
    Fill,
    Instrument,
    Liquidity,
    MarketData,
    OrderRequest,
    OrderState,
    OrderStatus,
    OrderType,
    Position,
    Side,
)
from tradetower.errors import (
    InsufficientFundsError,
    InvalidOrderError,
    OrderNotFoundError,
)

_REJECTS = {
    K.R_INSUFFICIENT_FUNDS: InsufficientFundsError,
    K.R_MIN_SIZE: InvalidOrderError,
    K.R_INVALID: InvalidOrderError,
}


def _dec(x: float) -> Decimal:
    return Decimal(repr(round(float(x), 12))) if math.isfinite(x) else Decimal(0)


def _ts(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class SimulatedExchange:
    """A venue over recorded bars; implements :class:`tradetower.connector.ExchangeConnector`."""

    broker = "SIMULATOR"

    def __init__(
        self,
        data: Any,
        instruments: Mapping[str, Instrument] | None = None,
        *,
        config: SimConfig | None = None,
        quote: str = "USD",
        symbol: str = "ASSET",
    ) -> None:
        from simulator.engine import _instruments

        self.config = config or SimConfig()
        self.market = MarketData.coerce(data, symbol)
        self.instruments = _instruments(self.market.symbols, instruments, self.config)
        self.quote = quote
        params = sim_params(self.config, wants_bars=True)
        self._state = S.allocate(
            self.market.ohlcv,
            self.market.time_ms,
            instrument_table(self.instruments),
            params,
            capacity=self.config.capacity,
        )
        self._actions = np.zeros((1, K.N_ACTION))
        self._event = np.zeros(K.N_EVENT)
        self._by_client: dict[str, int] = {}
        self._client_of: dict[int, str] = {}
        self._events: asyncio.Queue[OrderEvent] = asyncio.Queue()
        self._fills: list[Fill] = []
        self._connected = False
        self.finished = False
        # Bar 0 is the first bar the venue has seen: move the clock onto its close.
        self._run_until_bar_close()

    # ------------------------------------------------------------ clock
    @property
    def bar(self) -> int:
        return min(int(self._state.counters[S.C_BAR]), self.market.n_bars - 1)

    @property
    def now(self) -> datetime:
        return _ts(int(self.market.time_ms[self.bar]))

    def _run_until_bar_close(self) -> None:
        """Process events until the current bar's close (a BAR event) or the end of data."""
        while True:
            et = step_nb(self._state, self._actions, 0, self._event)
            if et == K.EV_BUFFER_FULL:
                self._state = S.grow(self._state)
                continue
            if et in (K.EV_BAR, K.EV_END):
                self.finished = et == K.EV_END
                return
            if et in (K.EV_FILL, K.EV_CANCEL):
                self._publish(et, self._event)

    async def advance(self, bars: int = 1) -> None:
        """Move the clock ``bars`` bars forward, filling what the market reaches."""
        for _ in range(bars):
            if self.finished:
                return
            self._run_until_bar_close()

    def _publish(self, et: int, ev: np.ndarray) -> None:
        oid = int(ev[K.E_ID])
        fill = None
        if et == K.EV_FILL:
            fill = Fill(
                order_id=oid,
                symbol=self.market.symbols[int(ev[K.E_INST])],
                side=Side(int(ev[K.E_SIDE])),
                qty=float(ev[K.E_QTY]),
                price=float(ev[K.E_PRICE]),
                fee=float(ev[K.E_FEE]),
                liquidity=Liquidity.TAKER if self._taker(oid) else Liquidity.MAKER,
                timestamp_ms=int(ev[K.E_TIME]),
                remaining=float(ev[K.E_REMAINING]),
                liquidation=int(ev[K.E_CODE]) == 1,
            )
            self._fills.append(fill)
        if oid >= 0:
            self._events.put_nowait(
                OrderEvent(self._order_state(oid), _ts(int(ev[K.E_TIME])), fill)
            )

    def _taker(self, oid: int) -> bool:
        return oid < 0 or self._state.orders[oid, S.O_TAKER] > 0

    # ------------------------------------------------------------ lifecycle
    async def connect(self) -> None:
        self._connected = True

    async def close(self) -> None:
        self._connected = False

    async def health_check(self) -> HealthStatus:
        return HealthStatus(healthy=True, latency_ms=0.0, detail="simulated")

    async def session_status(self) -> SessionStatus:
        return SessionStatus(valid=True)

    async def refresh_session(self) -> SessionStatus:
        return SessionStatus(valid=True)

    # ------------------------------------------------------------ account
    async def get_balances(self) -> Sequence[Balance]:
        st = self._state
        cash = st.account[S.AC_CASH]
        locked = st.account[S.AC_LOCKED]
        out = [Balance(self.quote, _dec(cash - locked), _dec(locked))]
        for i, sym in enumerate(self.market.symbols):
            if self.instruments[sym].is_margin:
                continue
            held, lock = st.pos[i, S.PS_QTY], st.pos[i, S.PS_LOCKED]
            out.append(Balance(sym.split("/")[0], _dec(held - lock), _dec(lock)))
        return out

    async def get_positions(self) -> Sequence[Position]:
        st = self._state
        return [
            Position(sym, float(st.pos[i, S.PS_QTY]), float(st.pos[i, S.PS_AVG]))
            for i, sym in enumerate(self.market.symbols)
            if st.pos[i, S.PS_QTY] != 0.0
        ]

    async def get_account(self) -> AccountInfo:
        st = self._state
        held = st.pos[:, S.PS_QTY] != 0
        equity = st.account[S.AC_CASH] + float(
            (st.pos[held, S.PS_QTY] * st.pos[held, S.PS_MARK]).sum()
        )
        margin = any(i.is_margin for i in self.instruments.values())
        return AccountInfo(
            account_id="simulated",
            currency=self.quote,
            account_type=AccountType.MARGIN if margin else AccountType.CASH,
            equity=_dec(equity),
            cash=_dec(st.account[S.AC_CASH]),
            buying_power=_dec(st.account[S.AC_CASH] - st.account[S.AC_LOCKED]),
        )

    async def get_regulatory_info(self) -> RegulatoryInfo:
        top = max(i.leverage for i in self.instruments.values())
        return RegulatoryInfo(pdt=False, day_trade_count=0, max_leverage=_dec(top))

    # ------------------------------------------------------------ orders
    def _inst(self, symbol: str) -> int:
        try:
            return self.market.symbols.index(symbol)
        except ValueError:
            raise InvalidOrderError(f"unknown symbol {symbol!r}", broker=self.broker) from None

    def _order_state(self, oid: int) -> OrderState:
        o = self._state.orders[oid]
        i = int(o[S.O_INST])
        return OrderState(
            client_order_id=self._client_of.get(oid, str(oid)),
            symbol=self.market.symbols[i] if i >= 0 else "",
            side=Side(int(o[S.O_SIDE])),
            type=OrderType(int(o[S.O_TYPE])),
            qty=float(o[S.O_QTY]),
            status=OrderStatus(int(o[S.O_STATUS])),
            price=float(o[S.O_PRICE]),
            filled=float(o[S.O_FILLED]),
            avg_fill_price=float(o[S.O_AVG_FILL]),
            exchange_order_id=str(oid),
            reduce_only=bool(o[S.O_REDUCE] > 0),
        )

    def _find(self, client_order_id: str | None, exchange_order_id: str | None) -> int:
        if client_order_id is not None and client_order_id in self._by_client:
            return self._by_client[client_order_id]
        if exchange_order_id is not None and exchange_order_id.isdigit():
            oid = int(exchange_order_id)
            if oid < int(self._state.counters[S.C_N_ORDERS]):
                return oid
        raise OrderNotFoundError(
            f"no order {client_order_id or exchange_order_id!r}", broker=self.broker
        )

    async def place_order(self, request: OrderRequest) -> OrderState:
        if request.client_order_id and request.client_order_id in self._by_client:
            return self._order_state(self._by_client[request.client_order_id])
        if self._state.counters[S.C_N_ORDERS] + 8 >= self._state.orders.shape[0]:
            self._state = S.grow(self._state)
        a = self._actions[0]
        a[:] = 0.0
        a[K.A_KIND] = K.A_PLACE
        a[K.A_INST] = self._inst(request.symbol)
        a[K.A_SIDE] = int(request.side)
        a[K.A_TYPE] = int(request.type)
        a[K.A_PRICE] = request.price
        a[K.A_QTY] = request.qty
        a[K.A_TIF] = int(request.time_in_force)
        a[K.A_REDUCE_ONLY] = 1.0 if request.reduce_only else 0.0
        a[K.A_TAG] = request.tag
        apply_actions_nb(self._state, self._actions, 1)
        oid = int(a[K.A_RESULT])
        client = request.client_order_id or f"sim-{oid}"
        self._by_client[client] = oid
        self._client_of[oid] = client
        self._drain_pending()
        o = self._state.orders[oid]
        if o[S.O_STATUS] == K.ST_REJECTED:
            reason = int(o[S.O_REASON])
            error = _REJECTS.get(reason, InvalidOrderError)
            raise error(f"order {client} rejected ({reason})", broker=self.broker)
        return self._order_state(oid)

    def _drain_pending(self) -> None:
        c = self._state.counters
        for j in range(int(c[S.C_PEND_HEAD]), int(c[S.C_PEND_TAIL])):
            self._publish(int(self._state.pending[j, K.E_TYPE]), self._state.pending[j])
        c[S.C_PEND_HEAD] = 0
        c[S.C_PEND_TAIL] = 0

    async def cancel_order(
        self, *, client_order_id: str | None = None, exchange_order_id: str | None = None
    ) -> OrderState:
        oid = self._find(client_order_id, exchange_order_id)
        cancel_order_nb(self._state, oid, K.R_USER, True)
        self._drain_pending()
        return self._order_state(oid)

    async def cancel_all(self, symbol: str | None = None) -> Sequence[OrderState]:
        target = None if symbol is None else self._inst(symbol)
        active = self._state.active[: int(self._state.counters[S.C_N_ACTIVE])].tolist()
        out = []
        for oid in active:
            if target is None or int(self._state.orders[oid, S.O_INST]) == target:
                cancel_order_nb(self._state, oid, K.R_USER, True)
                out.append(self._order_state(oid))
        self._drain_pending()
        return out

    async def modify_order(self, client_order_id: str, replacement: OrderRequest) -> OrderState:
        await self.cancel_order(client_order_id=client_order_id)
        n = sum(1 for c in self._by_client if c.startswith(f"{client_order_id}-r"))
        new_id = replacement.client_order_id or f"{client_order_id}-r{n + 1}"
        fields = {f: getattr(replacement, f) for f in replacement.__slots__}
        return await self.place_order(OrderRequest(**{**fields, "client_order_id": new_id}))

    async def get_order(
        self, *, client_order_id: str | None = None, exchange_order_id: str | None = None
    ) -> OrderState:
        return self._order_state(self._find(client_order_id, exchange_order_id))

    async def get_open_orders(self, symbol: str | None = None) -> Sequence[OrderState]:
        active = sorted(self._state.active[: int(self._state.counters[S.C_N_ACTIVE])].tolist())
        states = [self._order_state(oid) for oid in active]
        return [s for s in states if symbol is None or s.symbol == symbol]

    async def get_fills(self, since: datetime) -> Sequence[Fill]:
        cutoff = int(since.timestamp() * 1000)
        return [f for f in self._fills if f.timestamp_ms >= cutoff]

    async def preview_order(self, request: OrderRequest) -> OrderPreview:
        i = self._inst(request.symbol)
        inst = self.instruments[request.symbol]
        price = request.price if request.type != OrderType.MARKET else self._state.pos[i, S.PS_MARK]
        rate = inst.taker_fee if request.type != OrderType.LIMIT else inst.maker_fee
        notional = price * request.qty
        return OrderPreview(_dec(price), _dec(notional), _dec(notional * rate))

    async def set_leverage(self, symbol: str, leverage: Decimal) -> Decimal:
        i = self._inst(symbol)
        if not self.instruments[symbol].is_margin:
            raise InvalidOrderError(f"{symbol} is a spot instrument", broker=self.broker)
        lev = min(float(leverage), 125.0)
        self._state.inst[i, S.I_LEVERAGE] = lev
        return _dec(lev)

    async def place_protective_stop(self, request: OrderRequest) -> OrderState:
        stop = OrderRequest(
            symbol=request.symbol,
            side=request.side,
            qty=request.qty,
            type=OrderType.STOP,
            price=request.price,
            reduce_only=True,
            client_order_id=request.client_order_id,
            tag=request.tag,
        )
        return await self.place_order(stop)

    # ------------------------------------------------------------ streams
    async def order_events(self) -> AsyncIterator[OrderEvent]:
        while not self._events.empty():
            yield self._events.get_nowait()

    async def ticks(self, symbols: Sequence[str]) -> AsyncIterator[Tick]:
        for sym in symbols:
            i = self._inst(sym)
            yield Tick(sym, self.now, last=_dec(self._state.ohlcv[self.bar, i, 3]))

    # ------------------------------------------------------------ data
    async def get_candles(
        self, symbol: str, timeframe: str, start: datetime, end: datetime | None = None
    ) -> Sequence[Bar]:
        frame = self.market.frame(symbol).iloc[: self.bar + 1]
        if timeframe not in ("native", ""):
            frame = _resample(frame, timeframe)
        lo = pd.Timestamp(start)
        hi = pd.Timestamp(end) if end is not None else frame.index[-1]
        part = frame[(frame.index >= lo) & (frame.index <= hi)].dropna()
        ms = pd.DatetimeIndex(part.index).as_unit("ms").asi8
        return [
            Bar(int(t), *(float(v) for v in row))
            for t, row in zip(ms, part.to_numpy(), strict=True)
        ]

    async def get_instrument(self, symbol: str) -> Instrument:
        self._inst(symbol)
        return self.instruments[symbol]

    async def search_instruments(self, query: str, limit: int = 50) -> Sequence[Instrument]:
        q = query.lower()
        return [i for s, i in self.instruments.items() if q in s.lower()][:limit]

    async def market_status(self, symbol: str) -> MarketStatus:
        self._inst(symbol)
        session = MarketSession.CLOSED if self.finished else MarketSession.REGULAR
        return MarketStatus(symbol, session)

    async def trading_calendar(
        self, symbol: str, start: date, end: date
    ) -> Sequence[TradingSession]:
        self._inst(symbol)
        days = pd.date_range(start, end, freq="D")
        return [
            TradingSession(
                d.date(),
                d.to_pydatetime().replace(tzinfo=UTC),
                (d + pd.Timedelta(days=1)).to_pydatetime().replace(tzinfo=UTC),
            )
            for d in days
        ]


def _resample(frame: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    rule = {"1m": "1min", "5m": "5min", "15m": "15min", "1h": "1h", "4h": "4h", "1d": "1D"}.get(
        timeframe
    )
    if rule is None:
        raise InvalidOrderError(f"unknown timeframe {timeframe!r}")
    agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    return frame.resample(rule, label="left", closed="left").agg(agg).dropna()
