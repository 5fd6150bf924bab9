"""Grid (STRATEGIES.md §3.1): the worked examples G1-G3, the rules around them, and properties."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import make_bars, random_walk, real_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator import backtest
from strategies.grid import Grid, GridConfig
from tradetower.domain.instrument import Instrument
from tradetower.errors import ConfigError

X = Instrument(symbol="X/USD", tick=0.01, lot=0.0001, maker_fee=0.001, taker_fee=0.001)
G1_CONFIG = {"low_price": 100, "high_price": 146.41, "grid_levels": 5, "investment": 520.8203}
FLAT = (121.0, 121.0, 121.0, 121.0)


def run(bot: Grid, rows: list[tuple[float, float, float, float]], **kw: object):  # type: ignore[no-untyped-def]
    kw.setdefault("cash", 1000.0)
    kw.setdefault("mode", "compiled")
    return backtest(bot, make_bars(rows), instrument=X, **kw)  # type: ignore[arg-type]


def orders_placed_at(result, bar: int) -> list[tuple[int, float, float]]:  # type: ignore[no-untyped-def]
    o = result.orders
    o = o[(o.placed_bar == bar) & (o.type == "LIMIT")]
    return sorted(zip(o.side, o.price.round(2), o.qty.round(4), strict=True))


def fills_with_tags(result) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    tags = result.orders.set_index("order_id")["tag"]
    f = result.fills[result.fills.order_id >= 0].copy()
    f["tag"] = f.order_id.map(tags)
    return f


# ------------------------------------------------------------------------- worked examples


@pytest.mark.nojit
def test_g1_cycle() -> None:
    bot = Grid(**G1_CONFIG)
    rows = [FLAT, FLAT, (121, 121, 110, 115), (115, 121, 115, 120), (120, 120, 120, 120)]
    r = run(bot, rows, mode="python")
    np.testing.assert_allclose(bot.level_prices(), [100, 110, 121, 133.1, 146.41])
    assert r.metrics["quote_per_grid"] == pytest.approx(133.1, abs=1e-9)
    start = r.fills.iloc[0]
    assert (start.side, start.qty, start.price) == (1, 2.1, 121.0)
    assert start.fee == pytest.approx(0.2541, abs=1e-10)
    # the two buys at start, the two sells once the market buy filled
    assert orders_placed_at(r, 0) == [(1, 100.0, 1.331), (1, 110.0, 1.21)]
    assert orders_placed_at(r, 1) == [(-1, 133.1, 1.1), (-1, 146.41, 1.0)]
    buys = r.orders[(r.orders.placed_bar == 0) & (r.orders.type == "LIMIT")]
    assert (buys.qty * buys.price * 1.001).sum() == pytest.approx(266.4662, abs=1e-9)
    buy, sell = r.fills.iloc[1], r.fills.iloc[2]
    assert (buy.side, buy.qty, buy.price) == (1, 1.21, 110.0)
    assert buy.fee == pytest.approx(0.1331, abs=1e-10)
    assert orders_placed_at(r, 2) == [(-1, 121.0, 1.21)]
    assert (sell.side, sell.qty, sell.price) == (-1, 1.21, 121.0)
    assert sell.fee == pytest.approx(0.14641, abs=1e-10)
    assert r.metrics["realized_pnl"] == pytest.approx(13.03049, abs=1e-8)
    assert r.metrics["grid_profit"] == pytest.approx(13.03049, abs=1e-8)
    assert r.metrics["grid_cycles"] == 1
    assert orders_placed_at(r, 3) == [(1, 110.0, 1.21)]
    assert r.metrics["bot_state"] == "ACTIVE"
    for key in (
        "grid_profit",
        "grid_cycles",
        "unrealized_pnl",
        "total_pnl",
        "total_pnl_pct",
        "daily_avg_profit",
        "trailing_up_count",
        "trailing_down_count",
        "pump_activations",
        "grid_utilisation_pct",
        "base_qty",
        "quote_qty",
        "out_of_range",
    ):
        assert key in r.metrics
    assert r.metrics["grid_utilisation_pct"] == 25.0  # one cell of four has cycled


def test_g2_trailing_up() -> None:
    bot = Grid(**G1_CONFIG, stop_loss_pct=5)
    rows = [
        FLAT,
        FLAT,
        (121, 133.1, 121, 133.1),
        (133.1, 146.41, 133.1, 146.41),
        (146.41, 161.06, 146.41, 161.06),
        (161.06, 161.06, 161.06, 161.06),
    ]
    r = run(bot, rows)
    f = r.fills
    first, second = f.iloc[1], f.iloc[2]
    assert (first.side, first.qty, first.price) == (-1, 1.1, 133.1)
    assert (second.side, second.qty, second.price) == (-1, 1.0, 146.41)
    # cycle 1 = 13.03049, cycle 2 = 25.41 − 0.121 − 0.14641
    assert r.metrics["grid_profit"] == pytest.approx(13.03049 + 25.14259, abs=1e-8)
    assert orders_placed_at(r, 2) == [(1, 121.0, 1.1)]
    assert orders_placed_at(r, 3) == [(1, 133.1, 1.0)]
    # the shift at 161.051: the buy at 100 is cancelled, a buy 0.9090 goes to 146.41
    o = r.orders
    cancelled = o[(o.status == "CANCELLED") & (o.done_bar == 4)]
    assert list(zip(cancelled.side, cancelled.price, cancelled.qty, strict=True)) == [
        (1, 100.0, 1.331)
    ]
    assert orders_placed_at(r, 4) == [(1, 146.41, 0.909)]
    np.testing.assert_allclose(bot.level_prices(), [110, 121, 133.1, 146.41, 161.051])
    assert r.metrics["next_trailing_up_price"] == pytest.approx(177.1561, abs=1e-9)
    assert r.metrics["stop_loss_price"] == pytest.approx(104.5, abs=1e-9)
    assert r.metrics["trailing_up_count"] == 1
    assert [t["to"] for t in bot.transitions()] == ["ACTIVE", "TRAILING", "ACTIVE"]


@pytest.mark.nojit
def test_g3_stop_loss() -> None:
    bot = Grid(**G1_CONFIG, stop_loss_pct=5)
    rows = [FLAT, FLAT, (121, 121, 110, 110), (110, 110, 100, 100), (100, 100, 95, 95)]
    rows.append((95, 95, 95, 95))
    r = run(bot, rows, mode="python")
    o = r.orders
    assert orders_placed_at(r, 2) == [(-1, 121.0, 1.21)]
    assert orders_placed_at(r, 3) == [(-1, 110.0, 1.331)]
    cancelled = o[(o.status == "CANCELLED") & (o.done_bar == 4)]
    assert sorted(cancelled.side) == [-1, -1, -1, -1]
    close = r.fills.iloc[-1]
    assert (close.side, close.qty, close.price) == (-1, 4.641, 95.0)
    assert close.qty * close.price == pytest.approx(440.895, abs=1e-9)
    assert close.fee == pytest.approx(0.440895, abs=1e-10)
    assert r.metrics["total_pnl"] == pytest.approx(-80.366195, abs=1e-8)
    assert r.metrics["realized_pnl"] == pytest.approx(-80.366195, abs=1e-8)
    assert r.metrics["bot_state"] == "STOPPED"
    assert "STOP_LOSS_TRIGGERED" in r.metrics["notifications"]
    assert [t["trigger"] for t in bot.transitions()][-2:] == ["stop_loss_hit", "done"]
    assert (o.status == "OPEN").sum() == 0


# ---------------------------------------------------------------------------------- layout


def test_base_sizing() -> None:
    """BASE: Q = I/((1+f_m)Σ_{k<e} p_k + (1+f_t)·P·n_s), the same base in every cell."""
    bot = Grid(**G1_CONFIG, order_size_currency="BASE")
    r = run(bot, [FLAT, FLAT, FLAT])
    q = 520.8203 / (1.001 * (100 + 110) + 1.001 * 121 * 2)
    assert r.metrics["base_per_grid"] == pytest.approx(q, rel=1e-12)
    assert orders_placed_at(r, 0) == [(1, 100.0, 1.1511), (1, 110.0, 1.1511)]
    assert orders_placed_at(r, 1) == [(-1, 133.1, 1.1511), (-1, 146.41, 1.1511)]
    assert r.fills.iloc[0].qty == pytest.approx(2.3022, abs=1e-12)


def test_levels_from_step_snap_high() -> None:
    config = GridConfig.parse(
        {"low_price": 100, "high_price": 150, "grid_step": 10, "investment": 1}
    )
    np.testing.assert_allclose(config.levels(), [100, 110, 121, 133.1, 146.41])
    assert config.step == pytest.approx(0.1)


def test_empty_level_tie_goes_low_and_price_above_grid_buys_only() -> None:
    # P = 160 is above every level: e = N-1, no market buy, four buys
    r = run(Grid(**G1_CONFIG, trailing_up=False), [(160, 160, 160, 160)] * 3)
    assert (r.orders.type == "MARKET").sum() == 0
    assert [side for side, _, _ in orders_placed_at(r, 0)] == [1, 1, 1, 1]
    assert r.metrics["out_of_range"] is True


@pytest.mark.parametrize(
    ("fields", "field", "text"),
    [
        ({"grid_levels": 5, "grid_step": 10}, "", "exactly one of grid_step and grid_levels"),
        ({}, "", "exactly one of grid_step and grid_levels"),
        ({"grid_levels": 4}, "grid_levels", "≥ 5"),
        ({"grid_levels": 5, "low_price": 150}, "", "low_price (150.0) must be below high_price"),
        (
            {"grid_levels": 5, "trailing_down": True, "order_size_currency": "BASE"},
            "",
            "trailing_down works with order_size_currency QUOTE only",
        ),
        (
            {"grid_levels": 5, "stop_trailing_down_price": 100},
            "",
            "stop_trailing_down_price (100.0) must be below low_price",
        ),
        ({"grid_step": 0.1}, "", "grid_step (0.1) gives 382 levels"),
        ({"grid_levels": 5, "stop_loss_pct": 120}, "stop_loss_pct", "≤ 100"),
        ({"grid_levels": 5, "investment": -1}, "investment", "> 0"),
        ({"grid_levels": 5, "bogus": 1}, "bogus", "unknown field"),
    ],
)
def test_invalid_config_is_refused(fields: dict[str, object], field: str, text: str) -> None:
    base: dict[str, object] = {"low_price": 100, "high_price": 146.41, "investment": 500}
    with pytest.raises(ConfigError) as err:
        Grid(**{**base, **fields})
    assert text in str(err.value)
    if field:
        assert err.value.field == field


def test_camel_case_aliases() -> None:
    config = GridConfig.parse(
        {
            "lowPrice": 100,
            "highPrice": 146.41,
            "gridLevels": 5,
            "investment": 1,
            "trailingUp": False,
        }
    )
    assert config.grid_levels == 5 and config.trailing_up is False


def test_initial_order_below_minimum_fails_validation() -> None:
    inst = X.model_copy(update={"min_notional": 200.0})
    bot = Grid(**G1_CONFIG)
    r = backtest(bot, make_bars([FLAT, FLAT]), instrument=inst, cash=1000)
    assert bot.lifecycle_state.value == "ERROR"
    assert bot.transitions()[-1]["trigger"] == "setup_failed"
    assert r.orders.empty


def test_insufficient_funds_at_start_pauses_then_polls() -> None:
    bot = Grid(**G1_CONFIG)
    backtest(bot, make_bars([FLAT] * 8), instrument=X, cash=400)
    assert bot.lifecycle_state.value == "PAUSED"
    assert "INSUFFICIENT_FUNDS" in bot.metrics()["notifications"]
    assert bot.transitions()[0]["trigger"] == "insufficient_funds"


# -------------------------------------------------------------------------------- trailing


def test_trailing_up_jump_of_k_steps_gives_k_shifts() -> None:
    bot = Grid(**G1_CONFIG, stop_loss_pct=5, pump_protection=False)
    rows = [FLAT, FLAT, (121, 146.41, 121, 146.41), (180, 180, 180, 180), (180, 180, 180, 180)]
    r = run(bot, rows)
    # 180 opens above 161.051 and 177.1561: two shifts at once
    assert r.metrics["trailing_up_count"] == 2
    np.testing.assert_allclose(bot.level_prices(), [121, 133.1, 146.41, 161.051, 177.1561])
    assert r.metrics["stop_loss_price"] == pytest.approx(95 * 1.1**2, rel=1e-12)
    placed = orders_placed_at(r, 3)
    assert (1, 146.41, 0.909) in placed and (1, 161.05, 0.8264) in placed


def test_trailing_up_waits_for_the_bottom_cell() -> None:
    bot = Grid(**G1_CONFIG, pump_protection=False)
    # bar 2 fills the buys at 110 and 100, then runs above 161.051 while cell 0 holds base
    rows = [FLAT, FLAT, (121, 170, 100, 170), (170, 170, 170, 170), (170, 170, 170, 170)]
    r = run(bot, rows)
    assert r.metrics["trailing_up_count"] == 1
    o = r.orders
    shift_cancel = o[(o.status == "CANCELLED")]
    assert shift_cancel.done_bar.min() == 3  # not in bar 2, when the trigger fired
    assert orders_placed_at(r, 3)[-1] == (1, 146.41, 0.909)


def test_trailing_up_off_idles_out_of_range() -> None:
    bot = Grid(**G1_CONFIG, trailing_up=False)
    rows = [FLAT, FLAT, (121, 150, 121, 150), (150, 150, 150, 150)]
    r = run(bot, rows)
    assert r.metrics["out_of_range"] is True
    assert r.metrics["base_qty"] == 0.0
    rows += [(150, 150, 140, 140), (140, 140, 140, 140)]
    r = run(bot, rows)
    assert r.metrics["out_of_range"] is False


def test_trailing_down_extends_with_outside_quote() -> None:
    bot = Grid(**G1_CONFIG, trailing_down=True, stop_loss_pct=20)
    rows = [FLAT, FLAT, (121, 121, 108, 108), (108, 108, 98, 98), (98, 98, 90, 90)]
    rows += [(90, 90, 90, 90), (90, 90, 90, 90)]
    r = run(bot, rows)
    f = fills_with_tags(r)
    extension = f[(f.tag == 1) & (f.bar == 5)].iloc[0]
    assert (extension.side, extension.qty, extension.price) == (1, 1.4641, 90.0)
    assert orders_placed_at(r, 5) == [(-1, 100.0, 1.4641)]
    m = r.metrics
    assert m["trailing_down_count"] == 1
    assert m["investment_added"] == pytest.approx(1.4641 * 90 * 1.001, abs=1e-9)
    assert m["lowest_level"] == pytest.approx(100 / 1.1)
    assert m["stop_loss_price"] == pytest.approx(80.0)  # the SL stays
    assert m["bot_state"] == "ACTIVE"


def test_trailing_down_short_of_quote_does_not_pause() -> None:
    bot = Grid(**G1_CONFIG, trailing_down=True)
    rows = [FLAT, FLAT, (121, 121, 108, 108), (108, 108, 98, 98), (98, 98, 90, 90)]
    rows += [(90, 90, 90, 90), (90, 90, 90, 90)]
    r = run(bot, rows, cash=520.83)
    m = r.metrics
    assert m["trailing_down_count"] == 0
    assert "TRAILING_DOWN_SHORT" in m["notifications"]
    assert m["bot_state"] == "ACTIVE"
    assert m["out_of_range"] is True


def test_trailing_down_stops_at_the_floor() -> None:
    bot = Grid(**G1_CONFIG, trailing_down=True, stop_trailing_down_price=91)
    rows = [FLAT, FLAT, (121, 121, 108, 108), (108, 108, 98, 98), (98, 98, 90, 90)]
    rows += [(90, 90, 90, 90)]
    r = run(bot, rows)
    assert r.metrics["trailing_down_count"] == 0  # the next level, 90.909, is below 91
    assert r.metrics["out_of_range"] is True


# ------------------------------------------------------------------------------------ pump


def test_pump_defers_buys_and_recomputes_after_60s() -> None:
    bot = Grid(**G1_CONFIG)
    # bar 2: both buys fill on the way down, both sells on the way up: with the start fill
    # 60 s before, the 4th event (SELL@133.1) starts a pump
    rows = [FLAT, FLAT, (121, 146.41, 100, 140)] + [(140, 140, 140, 140)] * 4
    r = run(bot, rows)
    states = [(t["bar"], t["to"], t["trigger"]) for t in bot.transitions()]
    assert states[1:] == [(2, "PUMP", "pump_detected"), (4, "ACTIVE", "pump_cleared")]
    assert r.metrics["pump_activations"] == 1
    # sells reduce exposure and go out at once; every buy waits for 60 s without events
    assert orders_placed_at(r, 2) == [(-1, 110.0, 1.331), (-1, 121.0, 1.21)]
    assert orders_placed_at(r, 3) == []  # those sells fill at the open: the pump goes on
    assert orders_placed_at(r, 4) == [
        (1, 100.0, 1.331),
        (1, 110.0, 1.21),
        (1, 121.0, 1.1),
        (1, 133.1, 1.0),
    ]


def test_pump_defers_trailing_up_then_recomputes_it() -> None:
    bot = Grid(**G1_CONFIG)
    rows = [FLAT, FLAT, (121, 170, 100, 170)] + [(170, 170, 170, 170)] * 4
    r = run(bot, rows)
    moves = [(t["bar"], t["to"]) for t in bot.transitions()]
    assert moves[1:] == [(2, "PUMP"), (4, "ACTIVE"), (4, "TRAILING"), (4, "ACTIVE")]
    assert r.metrics["trailing_up_count"] == 1  # 170 is one step above 146.41, not two
    # the bottom buy, only due, is dropped unsent; the rest go out with the new top buy
    assert orders_placed_at(r, 4) == [
        (1, 110.0, 1.21),
        (1, 121.0, 1.1),
        (1, 133.1, 1.0),
        (1, 146.41, 0.909),
    ]
    assert not (r.orders.price == 100.0).iloc[7:].any()


# ---------------------------------------------------------------------------------- exits


def test_take_profit_is_a_derived_price_trigger() -> None:
    bot = Grid(**G1_CONFIG, take_profit_pct=2)
    rows = [FLAT, FLAT, (121, 127, 121, 127), (127, 127, 127, 127), (127, 127, 127, 127)]
    r = run(bot, rows)
    # after the start fill: PnL(p) = 266.4662 + 2.1·p − 520.8203 reaches 2% of I at 126.0812
    expected = (0.02 * 520.8203 + 520.8203 - 266.4662) / 2.1
    m = r.metrics
    assert m["bot_state"] == "COMPLETED"
    assert "TAKE_PROFIT_HIT" in m["notifications"]
    close = r.fills.iloc[-1]
    assert (close.side, close.qty, close.price) == (-1, 2.1, 127.0)
    assert m["realized_pnl"] == pytest.approx(2.1 * 6 - 0.2541 - 0.2667, abs=1e-9)
    assert bot.transitions()[-2]["trigger"] == "take_profit_hit"
    assert expected == pytest.approx(126.0812, abs=1e-4)
    assert (r.orders.status == "OPEN").sum() == 0


def test_close_signal_closes_to_quote() -> None:
    bot = Grid(**G1_CONFIG, commands={2: "CLOSE"})
    r = run(bot, [FLAT, FLAT, FLAT, (120, 120, 120, 120), FLAT])
    m = r.metrics
    assert m["bot_state"] == "STOPPED"
    assert m["base_qty"] == 0.0
    close = r.fills.iloc[-1]
    assert (close.side, close.qty, close.price, close.bar) == (-1, 2.1, 120.0, 3)
    assert [t["trigger"] for t in bot.transitions()][-2:] == ["close_signal", "done"]


@pytest.mark.parametrize(
    ("closure", "open_after", "base_after"),
    [("CANCEL_ORDERS", 0, 2.1), ("CLOSE_TO_QUOTE", 0, 0.0), ("NONE", 4, 2.1)],
)
def test_user_stop_closure_modes(closure: str, open_after: int, base_after: float) -> None:
    bot = Grid(**G1_CONFIG, closure=closure, commands={2: "STOP"})
    r = run(bot, [FLAT, FLAT, FLAT, FLAT, FLAT], close_at_end=False)
    o = r.orders
    grid = o[o.tag >= 500_000]
    still = grid[(grid.placed_bar <= 2) & ((grid.done_bar > 2) | (grid.status == "OPEN"))]
    assert len(still) == open_after
    assert r.metrics["bot_state"] == "STOPPED"
    assert r.metrics["base_qty"] == pytest.approx(base_after)


def test_user_stop_close_to_base_and_liquidate() -> None:
    bot = Grid(**G1_CONFIG, closure="CLOSE_TO_BASE", commands={2: "STOP"})
    r = run(bot, [FLAT] * 5)
    buy = r.fills.iloc[-2] if r.fills.iloc[-1].order_id < 0 else r.fills.iloc[-1]
    assert buy.side == 1 and buy.bar == 3
    assert buy.qty == pytest.approx(np.floor(266.4662 / (121 * 1.001) / 1e-4) * 1e-4)
    bot = Grid(**G1_CONFIG, closure="LIQUIDATE", commands={2: "STOP"})
    r = run(bot, [FLAT] * 5)
    assert r.orders.iloc[-1].time_in_force == "IOC"
    assert r.metrics["bot_state"] == "STOPPED"


def test_pause_and_resume_replace_every_order() -> None:
    bot = Grid(**G1_CONFIG, commands={2: "PAUSE", 4: "RESUME"})
    r = run(bot, [FLAT] * 6)
    o = r.orders
    assert (o[o.done_bar == 2].status == "CANCELLED").sum() == 4
    assert orders_placed_at(r, 4) == sorted(orders_placed_at(r, 0) + orders_placed_at(r, 1))
    assert [t["to"] for t in bot.transitions()] == ["ACTIVE", "PAUSED", "ACTIVE"]


def test_add_funds_scales_q_and_tops_up_the_sells() -> None:
    bot = Grid(**G1_CONFIG, add_funds={2: 520.8203})
    r = run(bot, [FLAT] * 5, cash=2000)
    assert r.metrics["quote_per_grid"] == pytest.approx(266.2)
    assert r.metrics["investment"] == pytest.approx(1041.6406)
    top_up = r.fills.iloc[1]
    assert (top_up.side, top_up.qty, top_up.price, top_up.bar) == (1, 2.1, 121.0, 3)
    assert orders_placed_at(r, 2) == [(1, 100.0, 2.662), (1, 110.0, 2.42)]
    assert orders_placed_at(r, 3) == [(-1, 133.1, 2.2), (-1, 146.41, 2.0)]


def test_funds_rejection_pauses_and_polls() -> None:
    # BASE: the new top buy needs more quote than the dropped bottom buy freed
    bot = Grid(**G1_CONFIG, order_size_currency="BASE")
    rows = [FLAT, FLAT, (121, 133.1, 121, 133.1), (133.1, 146.41, 133.1, 146.41)]
    rows += [(146.41, 161.1, 146.41, 161.1)] + [(161.1, 161.1, 161.1, 161.1)] * 7
    r = run(bot, rows, cash=520.8203)
    rejected = r.orders[r.orders.status == "REJECTED"]
    assert list(rejected.reason) == ["INSUFFICIENT_FUNDS"] and rejected.price.iloc[0] == 146.41
    m = r.metrics
    assert m["bot_state"] == "PAUSED"
    assert bot.transitions()[-1]["trigger"] == "insufficient_funds"
    assert m["notifications"] == ["INSUFFICIENT_FUNDS"]
    assert m["funds_poll_warnings"] == 1  # the 300 s poll failed too: stays PAUSED


def test_partial_fills_keep_the_ledger_exact() -> None:
    bars = random_walk(400, seed=3, vol=0.003)
    bars["volume"] = 3.0
    bot = Grid(low_price=96, high_price=102, grid_levels=8, investment=1000, trailing_down=True)
    r = backtest(bot, bars, instrument=X, cash=3000, participation=0.5, close_at_end=False)
    m, f = r.metrics, r.fills
    assert (r.orders.filled < r.orders.qty).any() and m["grid_cycles"] > 0
    assert m["base_qty"] == pytest.approx((f.side * f.qty).sum(), abs=1e-9)
    cash_flow = (-f.side * f.qty * f.price - f.fee).sum()
    assert m["quote_qty"] == pytest.approx(
        m["investment"] + m["investment_added"] + cash_flow, abs=1e-7
    )
    assert m["realized_pnl"] + m["unrealized_pnl"] == pytest.approx(m["total_pnl"], abs=1e-7)


def test_trigger_price_start_waits() -> None:
    bot = Grid(**G1_CONFIG, start_condition="TRIGGER_PRICE", start_trigger_price=115)
    r = run(bot, [FLAT, FLAT, (121, 121, 115, 118), (118, 118, 118, 118), FLAT])
    assert [t["to"] for t in bot.transitions()] == ["WAITING", "ACTIVE"]
    assert r.orders.placed_bar.min() == 2
    assert r.fills.iloc[0].price == 118.0  # the market buy at the next open


@pytest.mark.parametrize(
    ("fields", "commands", "start_bar"),
    [
        ({"start_condition": "MANUAL"}, {2: "START"}, 2),
        ({"start_condition": "SIGNAL"}, {3: "BUY"}, 3),
        ({"start_condition": "PRICE_CHANGE", "start_price_change_pct": -3}, {}, 2),
    ],
)
def test_other_start_conditions(
    fields: dict[str, object], commands: dict[int, str], start_bar: int
) -> None:
    bot = Grid(**G1_CONFIG, **fields, commands=commands)
    rows = [FLAT, FLAT, (121, 121, 117, 118), (118, 118, 118, 118), FLAT, FLAT]
    r = run(bot, rows)
    assert [t["to"] for t in bot.transitions()] == ["WAITING", "ACTIVE"]
    assert r.orders.placed_bar.min() == start_bar


def test_investment_pct_of_free_quote() -> None:
    fields = {k: v for k, v in G1_CONFIG.items() if k != "investment"}
    bot = Grid(**fields, investment_pct=52.08203)
    r = run(bot, [FLAT, FLAT, FLAT], cash=1000)
    assert r.metrics["investment"] == pytest.approx(520.8203)
    assert r.metrics["quote_per_grid"] == pytest.approx(133.1)


def test_kill_switch_closes_to_quote_and_sl_can_stay_put() -> None:
    bot = Grid(**G1_CONFIG, stop_loss_pct=5, sl_trails_grid=False, commands={5: "KILL"})
    rows = [FLAT, FLAT, (121, 133.1, 121, 133.1), (133.1, 146.41, 133.1, 146.41)]
    rows += [(146.41, 161.06, 146.41, 161.06), (161.06, 161.06, 161.06, 161.06)]
    r = run(bot, [*rows, (161.06, 161.06, 161.06, 161.06)])
    assert r.metrics["trailing_up_count"] == 1
    assert r.metrics["stop_loss_price"] == pytest.approx(95.0)
    assert r.metrics["bot_state"] == "STOPPED"
    assert bot.transitions()[-2]["trigger"] == "kill_switch"
    assert (r.orders.status == "OPEN").sum() == 0


def test_checkpoint_round_trip() -> None:
    bot = Grid(**G1_CONFIG, stop_loss_pct=5)
    run(bot, [FLAT, FLAT, (121, 121, 110, 115), (115, 121, 115, 120)])
    saved = bot.checkpoint()
    other = Grid(**G1_CONFIG, stop_loss_pct=5)
    other.restore(saved)
    np.testing.assert_array_equal(other.state, bot.state)
    other.instrument = bot.instrument
    assert json.dumps(other.metrics()) == json.dumps(bot.metrics())
    assert json.loads(saved)["config"]["stop_loss_pct"] == 5


# ------------------------------------------------------------------- parity and properties


def test_compiled_and_python_paths_agree_on_real_data() -> None:
    bars = pd.read_parquet(real_file("binance_ETH-BTC_5m_2018-01.parquet"))
    eth = Instrument(symbol="ETH/BTC", tick=1e-6, lot=0.001, maker_fee=0.001, taker_fee=0.001)
    config = {
        "low_price": 0.088,
        "high_price": 0.096,
        "grid_levels": 20,
        "investment": 1.0,
        "trailing_down": True,
        "stop_loss_pct": 15,
        "take_profit_pct": 50,
    }
    results = []
    for mode in ("compiled", "python"):
        bot = Grid(**config)
        results.append((backtest(bot, bars, instrument=eth, cash=3.0, mode=mode), bot))
    (a, bot_a), (b, bot_b) = results
    pd.testing.assert_frame_equal(a.orders, b.orders)
    pd.testing.assert_frame_equal(a.fills, b.fills)
    np.testing.assert_array_equal(bot_a.state, bot_b.state)
    assert a.metrics["grid_cycles"] > 50
    assert a.metrics["trailing_up_count"] + a.metrics["trailing_down_count"] > 0


def closed_cycles(result) -> list[dict[str, float]]:  # type: ignore[no-untyped-def]
    """Rebuild every closed cycle from the venue's logs: the open is the cell's buy fill, or the
    market fill a sell was placed after; the close is the cell's sell fill."""
    f = fills_with_tags(result)
    o = result.orders
    opens: dict[int, tuple[float, float, float]] = {}
    market: tuple[float, float] | None = None
    cycles = []
    for bar in sorted(set(f.bar) | set(o.placed_bar)):
        for fill in f[f.bar == bar].itertuples():
            if fill.tag == 1:
                market = (fill.price, fill.fee / fill.qty)
            elif fill.tag >= 500_000 and fill.side > 0:
                opens[fill.tag] = (fill.qty, fill.price, fill.fee)
            elif fill.tag >= 500_000:
                qty, buy, open_fee = opens.pop(fill.tag)
                assert qty == pytest.approx(fill.qty)
                cycles.append(
                    {
                        "cell": fill.tag - 1_000_000,
                        "qty": qty,
                        "buy": buy,
                        "sell": fill.price,
                        "fees": open_fee + fill.fee,
                    }
                )
        for order in o[(o.placed_bar == bar) & (o.side < 0) & (o.tag >= 500_000)].itertuples():
            if order.tag not in opens and order.status != "REJECTED":
                assert market is not None
                opens[order.tag] = (order.qty, market[0], market[1] * order.qty)
    return cycles


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    levels=st.integers(5, 15),
    width=st.floats(0.02, 0.08),
    trailing_up=st.booleans(),
    trailing_down=st.booleans(),
    pump=st.booleans(),
    stop_at=st.one_of(st.none(), st.integers(50, 390)),
)
def test_grid_properties(
    seed: int,
    levels: int,
    width: float,
    trailing_up: bool,
    trailing_down: bool,
    pump: bool,
    stop_at: int | None,
) -> None:
    bars = random_walk(400, seed=seed, vol=0.003)
    low, high = 100 * (1 - width), 100 * (1 + width / 2)
    inst = X.model_copy(update={"min_notional": 5.0})
    bot = Grid(
        low_price=round(low, 2),
        high_price=round(high, 2),
        grid_levels=levels,
        investment=1000,
        trailing_up=trailing_up,
        trailing_down=trailing_down,
        pump_protection=pump,
        stop_loss_pct=8,
        commands={stop_at: "STOP"} if stop_at is not None else None,
    )
    r = backtest(bot, bars, instrument=inst, cash=3000, close_at_end=False)
    m = r.metrics
    q, s = m["quote_per_grid"], bot.params[4]
    # every closed cycle realizes qty·(sell−buy) − fees; a limit-opened one grosses q·s
    cycles = closed_cycles(r)
    assert len(cycles) == m["grid_cycles"]
    total = 0.0
    for c in cycles:
        gross = c["qty"] * (c["sell"] - c["buy"])
        total += gross - c["fees"]
        low_k = bot.params[2] * (1 + s) ** c["cell"]
        step = q * s
        slack = 1e-4 * low_k * (1 + s) * s + 0.02 * c["qty"]  # one lot and the ticks
        if c["buy"] <= round(low_k, 2) + 1e-9:  # a limit buy (at its level, or below on a gap)
            assert gross >= step - slack
            if c["buy"] == round(low_k, 2) and c["sell"] == round(low_k * (1 + s), 2):
                assert gross == pytest.approx(step, abs=slack)
    assert total == pytest.approx(m["grid_profit"], abs=1e-7)
    # never more open orders than levels (a market order included)
    o = r.orders
    done = np.where(o.status == "OPEN", len(bars), o.done_bar)
    active = o.status != "REJECTED"
    n_open = [int(((o.placed_bar <= t) & (done > t) & active).sum()) for t in range(len(bars))]
    assert max(n_open) <= levels + m["trailing_down_count"]
    # no order below the minimum notional, none refused for it
    limits = o[o.type == "LIMIT"]
    assert (limits.qty * limits.price >= 5.0 - 1e-9).all()
    assert not (o.reason == "SKIPPED_MIN").any()
    # base and quote: the bot's ledger equals the venue's fills, and the PnL identity holds
    f = r.fills
    assert m["base_qty"] == pytest.approx((f.side * f.qty).sum(), abs=1e-9)
    cash_flow = (-f.side * f.qty * f.price - f.fee).sum()
    assert m["quote_qty"] == pytest.approx(
        m["investment"] + m["investment_added"] + cash_flow, abs=1e-7
    )
    close = float(bars.close.iloc[-1])
    assert m["realized_pnl"] + m["unrealized_pnl"] == pytest.approx(m["total_pnl"], abs=1e-7)
    assert m["total_pnl"] == pytest.approx(cash_flow + m["base_qty"] * close, abs=1e-7)
    # a stopped bot holds no open orders
    if m["bot_state"] in ("STOPPED", "COMPLETED"):
        end = max(t["bar"] for t in bot.transitions())
        assert not ((o.placed_bar <= end) & (done > end) & active & (o.tag >= 500_000)).any()
        assert not (o.placed_bar > end).any()
        assert not (o.reason == "END_OF_DATA").any()
    if stop_at is not None and m["bot_state"] != "ERROR":
        assert m["bot_state"] == "STOPPED"
