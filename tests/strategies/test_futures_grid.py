"""Futures Grid (STRATEGIES.md §3.7): the worked examples FG1 and FG2, parity and properties.

The bars are one minute apart. The bot starts at the close of bar 0 (P = that close); an order
placed while bar t is handled acts from bar t+1; a market order fills at the next bar's open,
and a limit fills at its price when the bar's path reaches it.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import make_bars, random_walk, real_file
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import backtest
from simulator.result import BacktestResult
from strategies.futures_grid import FuturesGrid, FuturesGridConfig
from tradetower.bots import codes as C
from tradetower.domain.instrument import Instrument
from tradetower.errors import ConfigError


def perp(leverage: float, **extra: float) -> Instrument:
    return Instrument(
        symbol="X-PERP",
        asset_class="CRYPTO_FUTURES",
        tick=0.01,
        lot=0.001,
        maker_fee=0.0002,
        taker_fee=0.0005,
        leverage=leverage,
        margin=True,
        **extra,
    )


def flat(price: float) -> tuple[float, float, float, float]:
    return (price, price, price, price)


def run(bot: FuturesGrid, rows: list[tuple[float, ...]], leverage: float) -> BacktestResult:
    bars = make_bars(rows)  # type: ignore[arg-type]
    return backtest(bot, bars, instrument=perp(leverage), cash=1_000, close_at_end=False)


def placed(r: BacktestResult, bar: int) -> list[tuple[int, str, float | None, float, bool]]:
    """(side, type, price or None for a market order, qty, reduce-only) of the orders placed
    while bar ``bar`` was handled."""
    o = r.orders[r.orders["placed_bar"] == bar]
    return [
        (int(s), t, round(float(p), 2) if p == p else None, float(q), bool(ro))
        for s, t, p, q, ro in zip(
            o["side"], o["type"], o["price"], o["qty"], o["reduce_only"], strict=True
        )
    ]


def fg1(**extra: Any) -> FuturesGrid:
    return FuturesGrid(
        direction="NEUTRAL",
        grid_mode="ARITHMETIC",
        low_price=90,
        high_price=110,
        grid_quantity=5,
        investment=100,
        leverage=5,
        **extra,
    )


@pytest.mark.nojit
def test_fg1_neutral_long_cycle() -> None:
    bot = fg1()
    np.testing.assert_allclose(bot.config.levels(), [90, 95, 100, 105, 110])
    # bar 1 falls to 95 (the buy opens a long), bar 2 rises to 100 (its close).
    r = run(bot, [flat(100), (100, 100, 95, 95), (95, 100, 95, 100), flat(100)], 5)
    assert r.metrics["order_qty"] == pytest.approx(1.246, abs=1e-12)  # ⌊498.7531/400⌋
    start = placed(r, 0)
    assert sorted(start) == [
        (-1, "LIMIT", 105.0, 1.246, False),
        (-1, "LIMIT", 110.0, 1.246, False),
        (1, "LIMIT", 90.0, 1.246, False),
        (1, "LIMIT", 95.0, 1.246, False),
    ]
    margin = sum(q * p for _, _, p, q, _ in start) / 5
    assert margin == pytest.approx(99.68, abs=1e-9)
    # The close, one level up (NEUTRAL closes are plain limits: see the class docstring).
    assert placed(r, 1) == [(-1, "LIMIT", 100.0, 1.246, False)]
    assert placed(r, 2) == [(1, "LIMIT", 95.0, 1.246, False)]  # the open again
    m = r.metrics
    assert m["grid_profit"] == pytest.approx(6.181406, abs=1e-9)
    assert m["cycles"] == 1 and m["position"] == 0 and m["bot_state"] == "ACTIVE"
    assert m["total_pnl"] == pytest.approx(r.equity.iloc[-1] - 1_000, abs=1e-9)


def test_fg1_neutral_short_cycle() -> None:
    # bar 1 rises to 105 (the sell opens a short), bar 2 falls to 100 (its close).
    r = run(fg1(), [flat(100), (100, 105, 100, 105), (105, 105, 100, 100), flat(100)], 5)
    assert placed(r, 1) == [(1, "LIMIT", 100.0, 1.246, False)]
    assert placed(r, 2) == [(-1, "LIMIT", 105.0, 1.246, False)]
    assert r.metrics["grid_profit"] == pytest.approx(6.178914, abs=1e-9)
    assert r.metrics["cycles"] == 1


def test_neutral_bar_spanning_both_sides_keeps_both_cells() -> None:
    # Bar 1 reaches 95 and 105: cell 1 opens long and cell 2 opens short; the venue nets them
    # flat. Both closes (@100) are plain limits and fill at bar 2's open.
    bot = fg1()
    r = run(bot, [flat(100), (100, 105, 95, 100), flat(100), flat(100)], 5)
    assert r.positions.iloc[1, 0] == 0
    assert sorted(placed(r, 1)) == [
        (-1, "LIMIT", 100.0, 1.246, False),
        (1, "LIMIT", 100.0, 1.246, False),
    ]
    m = r.metrics
    assert m["cycles"] == 2
    assert m["grid_profit"] == pytest.approx(6.181406 + 6.178914, abs=1e-9)
    assert m["total_pnl"] == pytest.approx(r.equity.iloc[-1] - 1_000, abs=1e-9)


def test_neutral_stop_while_both_sides_hold_realizes_the_locked_pnl() -> None:
    bot = FuturesGrid(**fg1().config.model_dump(), commands={1: C.CMD_CLOSE})
    r = run(bot, [flat(100), (100, 105, 95, 100), flat(100)], 5)
    m = r.metrics
    assert m["bot_state"] == "STOPPED" and m["position"] == 0
    assert len(r.orders[r.orders["type"] == "MARKET"]) == 0  # nothing to close at the venue
    locked = 1.246 * (105 - 95) - 1.246 * (95 + 105) * 0.0002
    assert m["realized_pnl"] == pytest.approx(locked, abs=1e-9)
    assert m["unrealized_pnl"] == pytest.approx(0.0, abs=1e-12)


def test_partial_fills_place_the_close_only_after_the_full_fill() -> None:
    # Volume 2 with a 40% participation cap: 0.8 per bar, so each 1.246 order takes two bars.
    rows = [flat(100), (100, 100, 95, 95), (95, 100, 95, 100), flat(100), flat(100), flat(100)]
    bars = make_bars(rows, volume=2.0)  # type: ignore[arg-type]
    r = backtest(fg1(), bars, instrument=perp(5), cash=1_000, close_at_end=False, participation=0.4)
    assert r.fills["qty"].tolist() == pytest.approx([0.8, 0.446, 0.8, 0.446])
    assert placed(r, 1) == []  # the buy @95 is only partly filled
    assert placed(r, 2) == [(-1, "LIMIT", 100.0, 1.246, False)]
    assert r.metrics["grid_profit"] == pytest.approx(6.181406, abs=1e-9)
    assert r.metrics["cycles"] == 1


def fg2(**extra: Any) -> FuturesGrid:
    return FuturesGrid(
        direction="LONG",
        grid_mode="GEOMETRIC",
        low_price=100,
        high_price=146.41,
        grid_quantity=5,
        investment=100,
        leverage=3,
        **extra,
    )


def test_fg2_long_start_and_cell_2_cycle() -> None:
    # bar 1 opens at 121: the market buy fills there; bar 2 rises to 133.1 (cell 2's close).
    r = run(fg2(), [flat(121), flat(121), (121, 133.1, 121, 133.1), flat(133.1)], 3)
    np.testing.assert_allclose(fg2().config.levels(), [100, 110, 121, 133.1, 146.41])
    assert r.metrics["order_qty"] == pytest.approx(0.662, abs=1e-12)
    assert sorted(placed(r, 0), key=str) == sorted(
        [
            (1, "LIMIT", 100.0, 0.662, False),
            (1, "LIMIT", 110.0, 0.662, False),
            (1, "MARKET", None, 1.324, False),
        ],
        key=str,
    )
    market = r.fills[r.fills["bar"] == 1]
    assert market[["qty", "price"]].values.tolist() == [[1.324, 121.0]]
    assert market["fee"].iloc[0] == pytest.approx(0.080102, abs=1e-12)
    assert sorted(placed(r, 1)) == [
        (-1, "LIMIT", 133.1, 0.662, True),
        (-1, "LIMIT", 146.41, 0.662, True),
    ]
    assert r.metrics["grid_profit"] == pytest.approx(7.95252656, abs=1e-9)
    assert placed(r, 2) == [(1, "LIMIT", 121.0, 0.662, False)]


FG2_DOWN = [flat(121), flat(121), (121, 121, 110, 110), (110, 110, 100, 100)]


def test_fg2_position_average_and_liquidation() -> None:
    bot = fg2()
    r = run(bot, [*FG2_DOWN, flat(100)], 3)
    m = r.metrics
    assert m["position"] == pytest.approx(2.648, abs=1e-12)
    assert m["avg_entry"] == pytest.approx(113.0, abs=1e-9)
    assert m["liq_price"] == pytest.approx(79.1, abs=1e-9)
    assert m["liq_buffer_level"] == pytest.approx(79.1 / 0.9, abs=1e-9)
    assert m["liq_distance_pct"] == pytest.approx(20.9, abs=1e-9)
    assert m["margin_used"] == pytest.approx(2.648 * 100 / 3, abs=1e-9)
    assert [c["state"] for c in bot.cells()] == ["CLOSE_WAIT"] * 4


@pytest.mark.nojit
def test_fg2_stop_loss() -> None:
    bot = fg2(stop_loss=95)
    # bar 4 falls to 95 (the SL fires), bar 5 opens at 95 (the market close fills there).
    r = run(bot, [*FG2_DOWN, (100, 100, 95, 95), flat(95)], 3)
    m = r.metrics
    close = r.fills[r.fills["bar"] == 5]
    assert close[["side", "qty", "price"]].values.tolist() == [[-1, 2.648, 95.0]]
    assert r.orders.iloc[-1]["reduce_only"]
    assert m["total_pnl"] == pytest.approx(-47.897686, abs=1e-9)
    assert m["realized_pnl"] == pytest.approx(-47.897686, abs=1e-9)
    assert m["unpaired_pnl"] == pytest.approx(-47.897686, abs=1e-9)
    assert r.equity.iloc[-1] - 1_000 == pytest.approx(-47.897686, abs=1e-9)
    assert m["position"] == 0 and m["bot_state"] == "STOPPED"
    assert (r.orders["status"] != "OPEN").all()
    assert [(t["to"], t["trigger"]) for t in bot.transitions()] == [
        ("ACTIVE", "user_start"),
        ("CLOSING", "stop_loss_hit"),
        ("STOPPED", "done"),
    ]


def test_take_profit_completes() -> None:
    bot = fg2(take_profit=140)
    r = run(bot, [flat(121), flat(121), (121, 140, 121, 140), flat(140), flat(140)], 3)
    m = r.metrics
    assert m["bot_state"] == "COMPLETED" and m["position"] == 0
    assert m["grid_profit"] == pytest.approx(7.95252656, abs=1e-9)
    # The remaining cell (0.662 bought at 121) is closed at 140 at market.
    unpaired = 0.662 * 19 - 0.040051 - 0.662 * 140 * 0.0005
    assert m["unpaired_pnl"] == pytest.approx(unpaired, abs=1e-9)
    assert bot.transitions()[1]["trigger"] == "take_profit_hit"


def test_short_grid_sells_below_and_buys_back() -> None:
    bot = FuturesGrid(
        direction="SHORT",
        grid_mode="ARITHMETIC",
        low_price=90,
        high_price=110,
        grid_quantity=5,
        investment=100,
        leverage=5,
    )
    r = run(bot, [flat(100), flat(100), (100, 100, 95, 95), flat(95)], 5)
    # Σ open prices = P + P + 105 + 110 = 415: Q = ⌊498.7531/415⌋ = 1.201
    assert r.metrics["order_qty"] == pytest.approx(1.201, abs=1e-12)
    assert sorted(placed(r, 0), key=str) == sorted(
        [
            (-1, "LIMIT", 105.0, 1.201, False),
            (-1, "LIMIT", 110.0, 1.201, False),
            (-1, "MARKET", None, 2.402, False),
        ],
        key=str,
    )
    assert sorted(placed(r, 1)) == [
        (1, "LIMIT", 90.0, 1.201, True),
        (1, "LIMIT", 95.0, 1.201, True),
    ]
    # Cell 1 closes at 95: 1.201·5 − 1.201·100·0.0005 − 1.201·95·0.0002
    assert r.metrics["grid_profit"] == pytest.approx(6.005 - 0.06005 - 0.022819, abs=1e-9)
    assert placed(r, 2) == [(-1, "LIMIT", 100.0, 1.201, False)]
    assert r.metrics["position"] == pytest.approx(-1.201)


def test_liquidation_buffer_closes_before_the_venue_liquidates() -> None:
    bot = FuturesGrid(
        direction="LONG",
        grid_mode="ARITHMETIC",
        low_price=90,
        high_price=110,
        grid_quantity=5,
        investment=100,
        leverage=5,
    )
    down = [flat(100), flat(100), (100, 100, 95, 95), (95, 95, 90, 90), flat(90)]
    r = run(bot, [*down, (90, 90, 87, 87), flat(87)], 5)
    # Position 5.18 at avg 96.25: liq 78.925, buffer trigger at 78.925/0.9 = 87.694.
    assert r.fills["liquidation"].sum() == 0
    assert bot.transitions()[1]["trigger"] == "liquidation_buffer"
    assert r.metrics["bot_state"] == "STOPPED" and r.metrics["position"] == 0
    assert r.fills.iloc[-1]["price"] == 87
    assert r.metrics["out_of_range"] and r.metrics["range_exits"] == 1


def test_venue_liquidation_on_a_gap_stops_the_bot() -> None:
    bot = FuturesGrid(
        direction="LONG",
        grid_mode="ARITHMETIC",
        low_price=90,
        high_price=110,
        grid_quantity=5,
        investment=100,
        leverage=5,
    )
    down = [flat(100), flat(100), (100, 100, 95, 95), (95, 95, 90, 90), flat(90)]
    r = run(bot, [*down, flat(70), flat(70)], 5)
    assert r.fills["liquidation"].sum() == 1
    m = r.metrics
    assert m["liquidated"] and m["bot_state"] == "STOPPED"
    assert m["total_pnl"] == pytest.approx(r.equity.iloc[-1] - 1_000, abs=1e-9)
    assert (r.orders["status"] != "OPEN").all()


def test_trigger_price_waits_then_lays_the_grid_there() -> None:
    bot = FuturesGrid(
        direction="NEUTRAL",
        grid_mode="ARITHMETIC",
        low_price=90,
        high_price=110,
        grid_quantity=5,
        investment=100,
        leverage=5,
        trigger_price=104,
    )
    r = run(bot, [flat(100), (100, 103, 100, 103), (103, 106, 103, 106), flat(106)], 5)
    assert r.orders["placed_bar"].min() == 2
    # Laid at 104: the empty level is 105; Σ open = 90 + 95 + 100 + 110 = 395.
    assert r.metrics["order_qty"] == pytest.approx(1.262, abs=1e-12)
    assert r.metrics["activation_price"] == 104
    assert [t["to"] for t in bot.transitions()] == ["WAITING", "ACTIVE"]


def test_out_of_range_flag_and_return() -> None:
    bot = fg1()
    r = run(bot, [flat(100), (100, 112, 100, 112), flat(112)], 5)
    assert r.metrics["out_of_range"] and r.metrics["range_exits"] == 1
    assert r.metrics["bot_state"] == "ACTIVE"
    r = run(fg1(), [flat(100), (100, 112, 100, 112), (112, 112, 108, 108), flat(108)], 5)
    assert not r.metrics["out_of_range"] and r.metrics["range_exits"] == 1


def test_pause_cancels_and_resume_re_places() -> None:
    bot = FuturesGrid(**fg1().config.model_dump(), commands={2: C.CMD_PAUSE, 4: C.CMD_RESUME})
    rows = [flat(100), (100, 100, 95, 95), flat(95), (95, 100, 95, 100), flat(96), flat(100)]
    r = run(bot, rows, 5)
    cancelled = r.orders[(r.orders["status"] == "CANCELLED") & (r.orders["reason"] == "USER")]
    assert len(cancelled) == 4 and (cancelled["done_bar"] == 2).all()
    # Bar 3 touches 100 while paused: nothing fills. Resume re-places the same four orders.
    assert sorted(placed(r, 4)) == sorted(
        [
            (-1, "LIMIT", 100.0, 1.246, False),
            (1, "LIMIT", 90.0, 1.246, False),
            (-1, "LIMIT", 105.0, 1.246, False),
            (-1, "LIMIT", 110.0, 1.246, False),
        ]
    )
    assert r.metrics["cycles"] == 1 and r.metrics["bot_state"] == "ACTIVE"


@pytest.mark.parametrize(("close", "position"), [(True, 0.0), (False, 1.246)])
def test_user_stop_follows_close_position_on_stop(close: bool, position: float) -> None:
    fields = {**fg1().config.model_dump(), "close_position_on_stop": close}
    bot = FuturesGrid(**fields, commands={2: C.CMD_STOP})
    r = run(bot, [flat(100), (100, 100, 95, 95), flat(95), flat(95)], 5)
    assert r.metrics["bot_state"] == "STOPPED"
    assert r.metrics["position"] == pytest.approx(position)
    assert (r.orders["status"] != "OPEN").all()
    assert bot.transitions()[1]["trigger"] == "user_stop"


def test_close_signal_always_closes() -> None:
    fields = {**fg1().config.model_dump(), "close_position_on_stop": False}
    bot = FuturesGrid(**fields, commands={2: C.CMD_CLOSE})
    r = run(bot, [flat(100), (100, 100, 95, 95), flat(95), flat(95)], 5)
    assert r.metrics["bot_state"] == "STOPPED" and r.metrics["position"] == 0


def test_too_small_an_investment_is_an_error() -> None:
    bot = FuturesGrid(**{**fg1().config.model_dump(), "investment": 0.01})
    r = run(bot, [flat(100), flat(100)], 5)
    assert r.metrics["bot_state"] == "ERROR" and r.metrics["error_too_small"]
    assert len(r.orders) == 0


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
    ("direction", "mode", "extra"),
    [
        ("NEUTRAL", "GEOMETRIC", {}),
        ("LONG", "ARITHMETIC", {"stop_loss": 1.03}),
        ("SHORT", "ARITHMETIC", {"take_profit": 1.06}),
    ],
)
def test_parity_compiled_and_python_on_real_perp_data(
    direction: str, mode: str, extra: dict[str, float]
) -> None:
    bars = pd.read_parquet(real_file("binance_XRP-USDT-PERP_5m_2021-11.parquet"))
    first = float(bars["close"].iloc[0])

    def make() -> FuturesGrid:
        return FuturesGrid(
            direction=direction,
            grid_mode=mode,
            low_price=round(first * 0.9, 4),
            high_price=round(first * 1.02, 4),
            grid_quantity=30,
            investment=1_000,
            leverage=5,
            **extra,
        )

    compiled = backtest(make(), bars, instrument=XRP, cash=10_000, mode="compiled")
    python = backtest(make(), bars, instrument=XRP, cash=10_000, mode="python")
    assert len(compiled.fills) > 20
    pd.testing.assert_frame_equal(compiled.orders, python.orders)
    pd.testing.assert_frame_equal(compiled.fills, python.fills)
    for key in ("grid_profit", "cycles", "total_pnl", "bot_state", "position"):
        assert compiled.metrics[key] == python.metrics[key]


def cycles_from_fills(r: BacktestResult, bot: FuturesGrid) -> list[tuple[int, bool, float, float]]:
    """(cell, opened by the market order, price move in the cell's favour, cycle PnL) of every
    completed cycle, rebuilt from the fills alone: qty·(close − open)·dir less both fees, the
    activation market order opening its cells at its average price with a pro-rata fee."""
    tags = r.orders["tag"].to_numpy()
    fills = r.fills[r.fills["order_id"] >= 0]
    cells = bot.cells()
    held: dict[int, tuple[bool, float, float]] = {}
    market = fills[tags[fills["order_id"].to_numpy()] == 900]
    if len(market):
        mkt_qty = float(market["qty"].sum())
        mkt_px = float((market["qty"] * market["price"]).sum()) / mkt_qty
        share = bot.metrics()["order_qty"] / mkt_qty
        held = {k: (True, mkt_px, float(market["fee"].sum()) * share) for k in range(len(cells))}
    out = []
    for oid, side, qty, px, fee in zip(
        fills["order_id"], fills["side"], fills["qty"], fills["price"], fills["fee"], strict=True
    ):
        k = int(tags[oid])
        if k >= len(cells):
            continue
        role = cells[k]["role"]
        if side == role:  # a long cell opens with a buy, a short cell with a sell
            held[k] = (False, float(px), float(fee))
            continue
        by_market, open_px, open_fee = held.pop(k)
        move = (px - open_px) * role
        out.append((k, by_market, move, qty * move - open_fee - fee))
    return out


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    direction=st.sampled_from(["LONG", "SHORT", "NEUTRAL"]),
    mode=st.sampled_from(["ARITHMETIC", "GEOMETRIC"]),
    n_levels=st.integers(3, 12),
    leverage=st.sampled_from([2, 3, 5]),
    width=st.floats(0.01, 0.05),
    stop_bar=st.one_of(st.none(), st.integers(20, 250)),
    real=st.booleans(),
)
def test_properties(
    seed: int,
    direction: str,
    mode: str,
    n_levels: int,
    leverage: int,
    width: float,
    stop_bar: int | None,
    real: bool,
) -> None:
    """On random walks (1-minute bars) and 300-bar windows of the real XRP perp (5 minutes)."""
    if real:
        all_bars = pd.read_parquet(real_file("binance_XRP-USDT-PERP_5m_2021-11.parquet"))
        start = seed % (len(all_bars) - 300)
        bars = all_bars.iloc[start : start + 300].reset_index(drop=True)
        inst = XRP.model_copy(update={"leverage": float(leverage)})
    else:
        bars = random_walk(300, seed=seed)
        inst = perp(leverage, min_notional=5.0)
    c0 = float(bars["close"].iloc[0])
    decimals = 4 if real else 2
    bot = FuturesGrid(
        direction=direction,
        grid_mode=mode,
        low_price=round(c0 * (1 - width), decimals),
        high_price=round(c0 * (1 + width), decimals),
        grid_quantity=n_levels,
        investment=1_000,
        leverage=leverage,
        commands={} if stop_bar is None else {stop_bar: C.CMD_STOP},
    )
    cash = 10_000.0
    r = backtest(bot, bars, instrument=inst, cash=cash, close_at_end=False)
    m, orders, fills = r.metrics, r.orders, r.fills
    n_bars = len(bars)
    # At most one order per cell, plus the activation market order or the closing one.
    done = orders["done_bar"].where(orders["done_bar"] >= 0, n_bars)
    for t in range(n_bars):
        open_now = ((orders["placed_bar"] <= t) & (done > t)).sum()
        assert open_now <= n_levels - 1 + 1
    # Nothing below the minimums, nothing refused.
    assert (orders["status"] != "REJECTED").all()
    limits = orders[orders["type"] == "LIMIT"]
    assert (limits["qty"] * limits["price"] >= inst.min_notional).all()
    # Conservation: realized + unrealized = equity − invested; the position is the fills'.
    position = float((fills["side"] * fills["qty"]).sum())
    assert m["position"] == pytest.approx(position, abs=1e-9)
    assert m["total_pnl"] == pytest.approx(r.equity.iloc[-1] - cash, abs=1e-6)
    flows = -(fills["side"] * fills["qty"] * fills["price"]).sum() - fills["fee"].sum()
    close = float(bars["close"].iloc[-1])
    assert r.equity.iloc[-1] == pytest.approx(cash + flows + position * close)
    assert m["bot_fees"] == pytest.approx(fills["fee"].sum(), rel=1e-9)
    assert m["n_liquidations"] == 0
    # Every completed cycle moves at least one step in the cell's favour, and the grid profit
    # is the sum of the cycles, each qty·(close − open)·dir less both fees.
    levels = bot.config.levels()
    cycles = cycles_from_fills(r, bot)
    assert len(cycles) == m["cycles"]
    for k, by_market, move, _ in cycles:
        if not by_market:  # levels are rounded to the tick when the orders are placed
            assert move >= levels[k + 1] - levels[k] - 1.01 * inst.tick
    assert m["grid_profit"] == pytest.approx(sum(p for *_, p in cycles), abs=1e-6)
    if stop_bar is not None:
        assert m["bot_state"] == "STOPPED" and m["position"] == 0
        assert (orders["status"] != "OPEN").all()
        late = orders[orders["placed_bar"] > stop_bar]
        assert (late["reduce_only"] & (late["type"] == "MARKET")).all()
        assert (orders["done_bar"] <= stop_bar + 1).all()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"low_price": 120}, "low_price"),
        ({"grid_quantity": 1}, "grid_quantity"),
        ({"grid_quantity": 201}, "grid_quantity"),
        ({"leverage": 0.5}, "leverage"),
        ({"leverage": 101}, "leverage"),
        ({"investment": 0}, "investment"),
        ({"liquidation_buffer": 0.5}, "liquidation_buffer"),
        ({"liquidation_buffer": 20}, "liquidation_buffer"),  # beyond 0.9/5 = 18%
        ({"stop_loss": 95, "take_profit": 95}, "stop_loss"),
        ({"grid_mode": "LOG"}, "grid_mode"),
        ({"direction": "UP"}, "direction"),
        ({"trailing": True}, "trailing"),
    ],
)
def test_invalid_configs_name_the_field(fields: dict[str, object], field: str) -> None:
    base = fg1().config.model_dump()
    with pytest.raises(ConfigError) as err:
        FuturesGridConfig.parse({**base, **fields})
    assert field in str(err.value)


def test_venue_checks_name_the_field() -> None:
    bars = make_bars([flat(100), flat(100)])
    spot = Instrument(symbol="X/USD", tick=0.01, lot=0.001)
    with pytest.raises(ConfigError, match="margin instrument"):
        backtest(fg1(), bars, instrument=spot, cash=1_000)
    with pytest.raises(ConfigError, match="leverage"):
        backtest(fg1(), bars, instrument=perp(3), cash=1_000)


def test_camel_case_aliases() -> None:
    cfg = FuturesGridConfig.parse(
        {
            "direction": "LONG",
            "gridMode": "GEOMETRIC",
            "lowPrice": 100,
            "highPrice": 146.41,
            "gridQuantity": 5,
            "investment": 100,
            "leverage": 3,
            "stopLoss": 95,
            "closePositionOnStop": False,
        }
    )
    assert cfg == fg2(stop_loss=95).config.replace(close_position_on_stop=False)


def test_checkpoint_round_trip() -> None:
    bot = fg2(stop_loss=95)
    run(bot, [*FG2_DOWN, flat(100)], 3)
    saved = bot.checkpoint()
    assert json.loads(saved)["config"]["stop_loss"] == 95
    other = fg2(stop_loss=95)
    other.restore(saved)
    np.testing.assert_array_equal(other.state, bot.state)
    assert other.cells() == bot.cells()
    assert other.lifecycle_state == bot.lifecycle_state
    with pytest.raises(ValueError, match="futures_grid"):
        other.restore(json.dumps({"strategy": "twap", "state": []}))
