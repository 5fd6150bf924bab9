"""TWAP bot (STRATEGIES.md §3.8): the worked examples T1 and T2, parity, properties, lifecycle.

How the examples map onto bars. The simulator fires a timer at the close of the bar that
contains its due time, and a market order fills at the next bar's open. With 30-second bars and
a 30 s frequency each slice therefore has its own bar:

* bar 0 closes at the arrival price 100.0: the bot starts there and decides slice 0;
* slice k's timer is due at ``start + 30k s`` = bar k's timestamp, so it is decided at bar k's
  close and fills at bar k+1's open;
* so bar k+1 opens at slice k's example price and closes at slice k+1's price (the mark the
  price limit is checked against). Bar 0 and the last bar are flat.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from conftest import make_bars, random_walk, real_file
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import backtest
from strategies import twap as T
from strategies.twap import Twap, TwapConfig
from tradetower import kernel_abi as K
from tradetower.bots import codes as C
from tradetower.domain.instrument import Instrument
from tradetower.errors import ConfigError

X_USD = Instrument(symbol="X/USD", tick=0.01, lot=0.0001, maker_fee=0.001, taker_fee=0.001)
PERP = Instrument(
    symbol="X-PERP",
    asset_class="CRYPTO_FUTURES",
    tick=0.01,
    lot=0.001,
    min_notional=0.5,
    maker_fee=0.0002,
    taker_fee=0.0005,
    leverage=5,
    margin=True,
)

T1_PRICES = [100.0 + 0.1 * k for k in range(10)]
T2_PRICES = [100.0, 100.2, 100.7, 100.4, 100.3, 100.6, 100.5, 100.1, 100.2, 100.3]


def slice_bars(prices: list[float], arrival: float = 100.0) -> pd.DataFrame:
    """30-second bars: bar 0 flat at ``arrival``; bar k+1 from prices[k] to prices[k+1]."""
    rows = [(arrival, arrival, arrival, arrival)]
    for k, o in enumerate(prices):
        c = prices[k + 1] if k + 1 < len(prices) else o
        rows.append((o, max(o, c), min(o, c), c))
    bars = make_bars(rows)
    bars.index = pd.date_range("2024-01-01", periods=len(rows), freq="30s", tz="UTC")
    return bars.rename_axis("timestamp")


def t1_bot(**extra: object) -> Twap:
    return Twap(direction="BUY", total_amount=1.2, duration=5, frequency=30, **extra)


@pytest.mark.nojit
def test_t1_ten_equal_slices() -> None:
    bot = t1_bot()
    r = backtest(bot, slice_bars(T1_PRICES), instrument=X_USD, cash=1_000, close_at_end=False)
    assert r.fills["qty"].tolist() == pytest.approx([0.12] * 10, abs=1e-12)
    assert r.fills["price"].tolist() == pytest.approx(T1_PRICES, abs=1e-9)
    assert (r.orders["time_in_force"] == "IOC").all() and (r.orders["type"] == "MARKET").all()
    assert r.orders["placed_bar"].tolist() == list(range(10))
    m = r.metrics
    assert m["vwap"] == pytest.approx(100.45, abs=1e-9)
    assert m["notional"] == pytest.approx(120.54, abs=1e-9)
    assert m["twap_fees"] == pytest.approx(0.12054, abs=1e-9)
    assert m["arrival_price"] == 100.0
    assert m["slippage_bps"] == pytest.approx(45.0, abs=1e-6)
    assert m["best_price"] == 100.0 and m["worst_price"] == pytest.approx(100.9)
    assert m["slices_executed"] == 10 and m["slices_skipped"] == 0
    assert m["fill_ratio"] == pytest.approx(1.0)
    assert m["bot_state"] == "COMPLETED" and m["cycles"] == 1
    assert [t["to"] for t in bot.transitions()] == ["ACTIVE", "CLOSING", "COMPLETED"]
    assert bot.transitions()[1]["trigger"] == "twap_finished"


def test_t2_price_limit_skips_and_respreads() -> None:
    bot = t1_bot(price_limit=100.50)
    r = backtest(bot, slice_bars(T2_PRICES), instrument=X_USD, cash=1_000, close_at_end=False)
    by_slice: list[float | None] = [None] * 10
    for bar, qty in zip(r.orders["placed_bar"], r.orders["qty"], strict=True):
        by_slice[bar] = qty  # slice k is decided at bar k's close
    expected = [0.12, 0.12, None, 0.1371, 0.1371, None, 0.1714, 0.1714, 0.1715, 0.1715]
    assert by_slice == [None if q is None else pytest.approx(q, abs=1e-12) for q in expected]
    filled = dict(zip(r.fills["bar"] - 1, r.fills["price"], strict=True))
    assert all(filled[k] == pytest.approx(T2_PRICES[k]) for k in filled)
    m = r.metrics
    assert m["vwap"] == pytest.approx(100.257133, abs=1e-6)
    assert round(m["slippage_bps"], 2) == 25.71
    assert m["slices_skipped"] == 2 and m["slices_executed"] == 8
    assert m["executed_qty"] == pytest.approx(1.2, abs=1e-12)
    assert m["best_price"] == 100.0 and m["worst_price"] == pytest.approx(100.5)
    assert m["bot_state"] == "COMPLETED"


def test_skipped_last_slice_ends_incomplete_without_catch_up() -> None:
    prices = [*T1_PRICES[:9], 101.0]  # the last slice's mark is above the limit
    r = backtest(
        t1_bot(price_limit=100.95),
        slice_bars(prices),
        instrument=X_USD,
        cash=1_000,
        close_at_end=False,
    )
    m = r.metrics
    assert m["slices_skipped"] == 1 and len(r.orders) == 9
    assert m["fill_ratio"] == pytest.approx(0.9, abs=1e-12)
    assert m["remaining_qty"] == pytest.approx(0.12, abs=1e-12)
    assert m["bot_state"] == "COMPLETED"


def test_sell_slippage_sign_on_a_margin_instrument() -> None:
    falling = [100.0 - 0.1 * k for k in range(10)]
    bot = Twap(direction="SELL", total_amount=1.0, duration=5, frequency=30)
    r = backtest(bot, slice_bars(falling), instrument=PERP, cash=1_000, close_at_end=False)
    m = r.metrics
    assert m["vwap"] == pytest.approx(99.55, abs=1e-9)
    assert m["slippage_bps"] == pytest.approx(45.0, abs=1e-6)  # selling lower costs
    assert m["best_price"] == 100.0 and m["worst_price"] == pytest.approx(99.1)
    assert r.positions.iloc[-1, 0] == pytest.approx(-1.0)


def test_user_stop_cancels_and_ends_stopped() -> None:
    bars = slice_bars(T1_PRICES)
    # With a price limit the slices are decided at the bar event, after the signals stage.
    bot = t1_bot(price_limit=200.0, commands={4: C.CMD_STOP})
    r = backtest(bot, bars, instrument=X_USD, cash=1_000, close_at_end=False)
    m = r.metrics
    assert m["bot_state"] == "STOPPED"
    assert r.orders["placed_bar"].max() <= 3  # the stop comes before slice 4 is decided
    assert (r.orders["status"] != "OPEN").all()
    assert m["slices_executed"] == 4 and m["fill_ratio"] == pytest.approx(0.4)
    assert bot.transitions()[-2]["trigger"] == "user_stop"


def test_stop_with_a_slice_out_cancels_it() -> None:
    # 1-minute bars, one slice every 30 s: two slices are out when the stop arrives.
    bars = make_bars([(100, 100, 100, 100)] * 8)
    bot = Twap(
        direction="BUY", total_amount=1.0, duration=5, frequency=30, commands={2: C.CMD_STOP}
    )
    r = backtest(bot, bars, instrument=X_USD, cash=1_000, close_at_end=False)
    cancelled = r.orders[r.orders["status"] == "CANCELLED"]
    assert len(cancelled) == 2 and (cancelled["placed_bar"] == 2).all()
    assert r.metrics["bot_state"] == "STOPPED"
    assert r.metrics["executed_qty"] == pytest.approx(0.4)


def test_pause_misses_slices_then_resume_re_spreads() -> None:
    bars = slice_bars(T1_PRICES)
    bot = t1_bot(commands={3: C.CMD_PAUSE, 6: C.CMD_RESUME})
    r = backtest(bot, bars, instrument=X_USD, cash=1_000, close_at_end=False)
    m = r.metrics
    # Within a bar timers come before signals: slice 3 goes out before the pause, and slice 6
    # falls due before the resume. Slices 4, 5 and 6 are missed, with no catch-up order; their
    # quantity stays in `remaining` and the last three slices share it.
    assert r.orders["placed_bar"].tolist() == [0, 1, 2, 3, 7, 8, 9]
    assert r.orders["qty"].tolist() == pytest.approx([0.12] * 4 + [0.24] * 3, abs=1e-12)
    assert m["slices_missed"] == 3 and m["slices_executed"] == 7
    assert m["bot_state"] == "COMPLETED" and m["fill_ratio"] == pytest.approx(1.0)
    assert [t["to"] for t in bot.transitions()][:3] == ["ACTIVE", "PAUSED", "ACTIVE"]


def test_manual_start_waits_for_the_command() -> None:
    bars = slice_bars(T1_PRICES)
    bot = t1_bot(start_condition="MANUAL", commands={2: C.CMD_START})
    r = backtest(bot, bars, instrument=X_USD, cash=1_000, close_at_end=False)
    assert r.orders["placed_bar"].min() == 2
    assert r.metrics["arrival_price"] == pytest.approx(T1_PRICES[2])
    assert [t["to"] for t in bot.transitions()][:2] == ["WAITING", "ACTIVE"]
    # The data ends before the schedule: the run stays ACTIVE with what it did.
    assert r.metrics["bot_state"] == "ACTIVE" and r.metrics["fill_ratio"] < 1


def test_trigger_price_start() -> None:
    bars = slice_bars(T1_PRICES)
    bot = t1_bot(start_condition="TRIGGER_PRICE", trigger_price=100.25)
    r = backtest(bot, bars, instrument=X_USD, cash=1_000, close_at_end=False)
    assert r.orders["placed_bar"].min() == 3  # bar 3 goes 100.2 → 100.3 and crosses 100.25
    assert r.metrics["arrival_price"] == pytest.approx(100.25)


def test_reduce_only_without_position_is_an_error() -> None:
    bot = Twap(direction="SELL", total_amount=1.0, duration=5, frequency=30, reduce_only=True)
    r = backtest(bot, slice_bars(T1_PRICES), instrument=PERP, cash=1_000)
    assert r.metrics["bot_state"] == "ERROR" and r.metrics["error_no_position"]
    assert len(r.orders) == 0
    assert bot.transitions()[0]["trigger"] == "setup_failed"


def _event(kind: int, **fields: float) -> np.ndarray:
    row = np.zeros(K.N_EVENT)
    row[K.E_TYPE] = kind
    for name, value in fields.items():
        row[getattr(K, name)] = value
    return row


def test_reduce_only_slices_are_capped_by_the_position() -> None:
    """Driven event by event (a backtest cannot start with a position)."""
    bot = Twap(direction="SELL", total_amount=1.0, duration=5, frequency=30, reduce_only=True)
    bot.state = bot.initial_state(None)  # type: ignore[arg-type]
    bot.check({"X": PERP})
    params = bot.params
    actions = np.zeros((64, K.N_ACTION))

    def run(row: np.ndarray) -> list[float]:
        n = T.twap_on_event_nb(params, bot.state, row, actions)
        return [actions[i, K.A_QTY] for i in range(n) if actions[i, K.A_KIND] == K.A_PLACE]

    pos = 0.25
    assert run(_event(K.EV_START, E_PRICE=100, E_MARK=100, E_POS_QTY=pos)) == [0.1]
    assert actions[1, K.A_REDUCE_ONLY] == 1 and actions[1, K.A_TIF] == K.IOC
    sent = []
    for k in range(1, 4):
        pos -= 0.1 if k < 3 else 0.05
        fill = _event(
            K.EV_FILL, E_ID=k, E_PRICE=100, E_QTY=0.1 if k < 3 else 0.05, E_TAG=T.SLICE_TAG
        )
        fill[K.E_POS_QTY] = round(pos, 12)
        run(fill)
        sent += run(_event(K.EV_TIMER, E_INST=-1, E_TAG=T.TIMER_TAG))
    assert sent == pytest.approx([0.1, 0.05])
    assert bot.lifecycle_state.value == "COMPLETED"  # nothing left to reduce
    assert bot.metrics()["fill_ratio"] == pytest.approx(0.25)


def test_a_timer_that_carries_the_mark_decides_at_once() -> None:
    """A venue whose timer events carry the mark needs no bar event for the price limit."""
    bot = t1_bot(price_limit=100.5)
    bot.state = bot.initial_state(None)  # type: ignore[arg-type]
    bot.check({"X": X_USD})
    actions = np.zeros((64, K.N_ACTION))
    n = T.twap_on_event_nb(bot.params, bot.state, _event(K.EV_START, E_PRICE=100), actions)
    assert n == 2  # the next timer and slice 0
    timer = _event(K.EV_TIMER, E_MARK=100.7, E_TAG=T.TIMER_TAG)
    n = T.twap_on_event_nb(bot.params, bot.state, timer, actions)
    assert n == 1 and actions[0, K.A_KIND] == K.A_SET_TIMER  # slice 1 skipped at 100.7
    assert bot.metrics()["slices_skipped"] == 1
    timer[K.E_MARK] = 100.2
    n = T.twap_on_event_nb(bot.params, bot.state, timer, actions)
    # slice 2: (1.2 − 0.12 still out)/(10 − 2)
    assert n == 2 and actions[1, K.A_QTY] == pytest.approx(0.135, abs=1e-12)


def test_ioc_remainders_stay_in_remaining() -> None:
    # Each bar's volume lets a slice fill only 0.05: the IOC remainder is cancelled and the
    # quantity left is re-spread over the slices left, with no catch-up at the end.
    bars = slice_bars(T1_PRICES)
    bars["volume"] = 0.1
    r = backtest(
        t1_bot(), bars, instrument=X_USD, cash=1_000, participation=0.5, close_at_end=False
    )
    assert r.fills["qty"].tolist() == pytest.approx([0.05] * 10)
    assert (r.orders["reason"] == "IOC_UNFILLED").all()
    m = r.metrics
    assert m["executed_qty"] == pytest.approx(0.5) and m["fill_ratio"] == pytest.approx(0.5 / 1.2)
    assert m["slices_executed"] == 10 and m["bot_state"] == "COMPLETED"
    assert r.orders["qty"].iloc[-1] == pytest.approx(1.2 - 0.45)  # the last takes the rest


XRP = Instrument(
    symbol="XRP-USDT-PERP",
    asset_class="CRYPTO_FUTURES",
    tick=0.0001,
    lot=0.1,
    min_notional=5,
    maker_fee=0.0002,
    taker_fee=0.0005,
    leverage=5,
    margin=True,
)


@pytest.mark.parametrize(
    ("direction", "duration", "frequency", "limit"),
    [("BUY", 240, 60, 1.012), ("SELL", 120, 20, None)],
)
def test_parity_compiled_and_python_on_real_perp_data(
    direction: str, duration: int, frequency: int, limit: float | None
) -> None:
    bars = pd.read_parquet(real_file("binance_XRP-USDT-PERP_5m_2021-11.parquet"))
    bars = bars.iloc[:120]
    first = float(bars["close"].iloc[0])

    def make() -> Twap:
        return Twap(
            direction=direction,
            total_amount=20_000,
            duration=duration,
            frequency=frequency,
            price_limit=None if limit is None else round(first * limit, 4),
        )

    compiled = backtest(make(), bars, instrument=XRP, cash=50_000, mode="compiled")
    python = backtest(make(), bars, instrument=XRP, cash=50_000, mode="python")
    assert len(compiled.fills) > 20
    pd.testing.assert_frame_equal(compiled.orders, python.orders)
    pd.testing.assert_frame_equal(compiled.fills, python.fills)
    for key in ("vwap", "slippage_bps", "slices_executed", "slices_skipped", "bot_state"):
        assert compiled.metrics[key] == python.metrics[key]
    if limit is not None:
        assert compiled.metrics["slices_skipped"] > 0


def expected_slices(total: float, n: int, skip: list[bool], lot: float) -> list[float]:
    """The schedule rule, independently: floor_lot(remaining/(S−k)), the last takes the rest."""
    out, rem = [], total
    for k in range(n):
        if skip[k]:
            continue
        q = rem if k == n - 1 else math.floor(rem / (n - k) / lot + 1e-9) * lot
        out.append(round(q, 9))
        rem = round(rem - q, 9)
    return out


def xrp_window(start: int, n_bars: int) -> pd.DataFrame:
    """``n_bars`` consecutive 5-minute bars of the real XRP perp sample from ``start``."""
    bars = pd.read_parquet(real_file("binance_XRP-USDT-PERP_5m_2021-11.parquet"))
    start = start % (len(bars) - n_bars)
    return bars.iloc[start : start + n_bars].reset_index(drop=True)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    real=st.booleans(),
    buy=st.booleans(),
    duration=st.integers(5, 15),
    frequency=st.sampled_from([15, 20, 30, 60]),
    total=st.floats(1.0, 50.0),
    limit_at=st.one_of(st.none(), st.floats(-0.004, 0.004)),
)
def test_properties(
    seed: int,
    real: bool,
    buy: bool,
    duration: int,
    frequency: int,
    total: float,
    limit_at: float | None,
) -> None:
    """On random walks (1-minute bars) and windows of the real XRP perp (5-minute bars)."""
    if real:
        bar_s, inst = 300, XRP.model_copy(update={"min_notional": 1.0})
        bars = xrp_window(seed, duration // 5 + 3)
        total = round(total * 200, 1)
    else:
        bar_s, inst = 60, PERP
        bars = random_walk(duration + 3, seed=seed)
        total = round(total, 3)
    close = bars["close"].to_numpy()
    decimals = 4 if real else 2
    limit = None if limit_at is None else round(close[0] * (1 + limit_at), decimals)
    bot = Twap(
        direction="BUY" if buy else "SELL",
        total_amount=total,
        duration=duration,
        frequency=frequency,
        price_limit=limit,
    )
    cash = 100_000.0
    r = backtest(bot, bars, instrument=inst, cash=cash, close_at_end=False)
    m, orders, fills = r.metrics, r.orders, r.fills
    n = bot.config.n_slices
    sign = 1 if buy else -1
    # Open orders: one IOC per slice, each done on the bar after it was sent.
    per_bar = orders.groupby("placed_bar").size()
    assert orders.empty or per_bar.max() <= math.ceil(bar_s / frequency)
    assert (orders["done_bar"] == orders["placed_bar"] + 1).all()
    # Minimums: nothing refused, every fill above the minimum notional.
    assert (orders["status"] == "FILLED").all()
    assert (fills["qty"] * fills["price"] >= inst.min_notional).all()
    # The schedule: slice k is due in bar ⌊k·f/bar⌋ and is decided at that bar's close.
    due_bar = [k * frequency // bar_s for k in range(n)]
    skip = [limit is not None and bool(sign * (close[b] - limit) > 0) for b in due_bar]
    assert orders["qty"].round(9).tolist() == pytest.approx(
        expected_slices(total, n, skip, inst.lot), abs=1e-9
    )
    assert m["slices_skipped"] == sum(skip)
    assert m["slices_executed"] == n - sum(skip)
    assert m["bot_state"] == "COMPLETED"
    if not skip[-1]:
        assert m["fill_ratio"] == pytest.approx(1.0)
    # Conservation: position and cash move only by the fills, net of fees.
    executed = float(fills["qty"].sum())
    assert m["executed_qty"] == pytest.approx(executed, abs=1e-9)
    assert r.positions.iloc[-1, 0] == pytest.approx(sign * executed, abs=1e-9)
    flows = -(fills["side"] * fills["qty"] * fills["price"]).sum() - fills["fee"].sum()
    assert r.equity.iloc[-1] == pytest.approx(cash + flows + sign * executed * close[-1])
    assert m["twap_fees"] == pytest.approx(fills["fee"].sum(), rel=1e-12)
    if executed > 0:
        vwap = float((fills["qty"] * fills["price"]).sum()) / executed
        assert m["vwap"] == pytest.approx(vwap, rel=1e-12)
        assert m["slippage_bps"] == pytest.approx((vwap / close[0] - 1) * 1e4 * sign, abs=1e-9)
        best = fills["price"].min() if buy else fills["price"].max()
        assert m["best_price"] == pytest.approx(best)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), stop_bar=st.integers(1, 8), frequency=st.sampled_from([20, 60]))
def test_a_stopped_bot_holds_no_open_orders(seed: int, stop_bar: int, frequency: int) -> None:
    bars = random_walk(15, seed=seed)
    bot = Twap(
        direction="SELL",
        total_amount=5.0,
        duration=10,
        frequency=frequency,
        commands={stop_bar: C.CMD_STOP},
    )
    r = backtest(bot, bars, instrument=PERP, cash=10_000, close_at_end=False)
    assert r.metrics["bot_state"] == "STOPPED"
    orders = r.orders
    assert (orders["placed_bar"] <= stop_bar).all()
    assert (orders["status"] != "OPEN").all() and (orders["done_bar"] <= stop_bar + 1).all()
    assert r.metrics["fill_ratio"] < 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"duration": 4}, "duration"),
        ({"duration": 1441}, "duration"),
        ({"frequency": 4}, "frequency"),
        ({"frequency": 61}, "frequency"),
        ({"total_amount": 0}, "total_amount"),
        ({"price_limit": -1}, "price_limit"),
        ({"direction": "HOLD"}, "direction"),
        ({"trigger_price": 100}, "trigger_price"),
        ({"start_condition": "TRIGGER_PRICE"}, "trigger_price"),
        ({"leverage": 200}, "leverage"),
        ({"jitter": True}, "jitter"),
    ],
)
def test_invalid_configs_name_the_field(fields: dict[str, object], field: str) -> None:
    base = {"direction": "BUY", "total_amount": 1.2, "duration": 5, "frequency": 30}
    with pytest.raises(ConfigError) as err:
        TwapConfig.parse({**base, **fields})
    assert field in str(err.value)


def test_venue_checks_name_the_field() -> None:
    bars = slice_bars(T1_PRICES)
    with pytest.raises(ConfigError, match="leverage"):
        backtest(t1_bot(leverage=5), bars, instrument=X_USD, cash=1_000, close_at_end=False)
    with pytest.raises(ConfigError, match="leverage"):
        backtest(t1_bot(leverage=3), bars, instrument=PERP, cash=1_000)
    tiny = Twap(direction="BUY", total_amount=0.0005, duration=5, frequency=30)
    with pytest.raises(ConfigError, match="total_amount"):
        backtest(tiny, bars, instrument=X_USD, cash=1_000, close_at_end=False)


def test_camel_case_aliases() -> None:
    cfg = TwapConfig.parse(
        {
            "direction": "SELL",
            "totalAmount": 2,
            "duration": 10,
            "frequency": 60,
            "priceLimit": 99,
            "reduceOnly": True,
        }
    )
    assert cfg.total_amount == 2 and cfg.price_limit == 99 and cfg.reduce_only
    assert cfg.n_slices == 10


def test_checkpoint_round_trip() -> None:
    bot = t1_bot(price_limit=100.5)
    backtest(bot, slice_bars(T2_PRICES), instrument=X_USD, cash=1_000, close_at_end=False)
    saved = bot.checkpoint()
    assert json.loads(saved)["config"]["price_limit"] == 100.5
    other = t1_bot(price_limit=100.5)
    other.restore(saved)
    np.testing.assert_array_equal(other.state, bot.state)
    assert other.metrics() == bot.metrics()
    assert other.lifecycle_state == bot.lifecycle_state
    with pytest.raises(ValueError, match="twap"):
        other.restore(json.dumps({"strategy": "grid", "state": []}))
