"""Loop (STRATEGIES.md §3.6): the worked examples L1–L2, level choice (gaps, extension,
stacking, the known-levels cap), take profit and exits, commands, config validation,
checkpoints, parity on real data and property tests."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import make_bars, random_walk
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import backtest
from simulator.result import BacktestResult
from strategies.loop import Loop, LoopConfig
from tradetower.domain.instrument import Instrument
from tradetower.errors import ConfigError

X = Instrument(symbol="X", tick=0.01, lot=0.0001, maker_fee=0.001, taker_fee=0.001)

FLAT = (100, 100, 100, 100)
UP_101 = (100, 101, 100, 101)  # SELL@101 fills
DOWN_99 = (101, 101, 99, 99)  # BUY@99 fills
L1_PATH = [FLAT, FLAT, UP_101, DOWN_99, (99, 99, 99, 99)]


def l1_bot(**extra: object) -> Loop:
    fields: dict[str, object] = {
        "investment": 1001,
        "low_price": 90,
        "high_price": 110,
        "order_distance": 1,
        "order_count": 10,
    }
    return Loop(**{**fields, **extra})


def run(
    bot: Loop,
    rows: list[tuple[float, float, float, float]],
    cash: float = 1001.0,
    mode: str = "compiled",
    instrument: Instrument = X,
) -> BacktestResult:
    return backtest(
        bot,
        make_bars(rows),
        instrument=instrument,
        cash=cash,
        symbol="X",
        mode=mode,  # type: ignore[arg-type]
        close_at_end=False,
    )


def placed(r: BacktestResult, bar: int) -> list[list[float]]:
    o = r.orders[r.orders["placed_bar"] == bar]
    return o[["side", "price", "qty"]].values.tolist()


def resting(r: BacktestResult) -> pd.DataFrame:
    o = r.orders
    return o[o["reason"] == "END_OF_DATA"].sort_values("price").reset_index(drop=True)


# ------------------------------------------------------------------ worked examples


@pytest.mark.nojit
def test_l1_layout_first_cycle_and_the_gap() -> None:
    """L1: E=100, d=1%, n=10, I=1001 (S=100), low 90, high 110."""
    bot = l1_bot()
    r = run(bot, L1_PATH)
    assert r.metrics["slice"] == pytest.approx(100.0, abs=1e-9)
    assert r.metrics["entry_price"] == 100.0
    start = r.orders[r.orders["placed_bar"] == 0]
    buys = start[start["type"] == "LIMIT"]
    assert buys[["side", "price", "qty"]].values.tolist() == [
        [1, 99.00, 1.0101],
        [1, 98.01, 1.0203],
        [1, 97.03, 1.0306],
        [1, 96.06, 1.0410],
        [1, 95.10, 1.0515],
    ]
    market = start[start["type"] == "MARKET"].iloc[0]
    assert market["side"] == 1 and market["qty"] == 5.0
    fill = r.fills.iloc[0]
    assert fill[["qty", "price"]].tolist() == [5.0, 100.0]
    assert fill["fee"] == pytest.approx(0.5, abs=1e-12)
    assert placed(r, 1) == [
        [-1, 101.00, 1.0],
        [-1, 102.01, 1.0],
        [-1, 103.03, 1.0],
        [-1, 104.06, 1.0],
        [-1, 105.10, 1.0],
    ]
    # SELL@101 fills: 1·(101−100) − 0.1 − 0.101 = 0.799; no buy gap → a new level 94.148…
    assert r.metrics["bot_profit"] == pytest.approx(0.799, abs=1e-10)
    assert placed(r, 2) == [[1, 94.15, 1.0621]]
    # BUY@99 fills → SELL 1.0101@101.00, the gap.
    assert placed(r, 3) == [[-1, 101.00, 1.0101]]
    m = r.metrics
    assert m["known_buy_levels"] == 6 and m["known_sell_levels"] == 5
    assert m["active_buys"] == 5 and m["active_sells"] == 5
    assert len(resting(r)) == 10  # the order count stays constant
    assert m["cycles"] == 1 and m["reinvested"] == 0


def test_l1_the_gap_cycle_makes_1_81818() -> None:
    r = run(l1_bot(), [*L1_PATH[:4], (99, 101, 99, 101), (101, 101, 101, 101)])
    sell = r.fills.iloc[-1]
    assert sell[["side", "qty", "price"]].tolist() == [-1, 1.0101, 101.0]
    assert r.metrics["bot_profit"] == pytest.approx(0.799 + 1.81818, abs=1e-10)
    # Its buy goes back to the lowest buy gap, 99.
    assert placed(r, 4) == [[1, 99.0, 1.0101]]


@pytest.mark.parametrize(("pct", "qty", "spend"), [(100, 1.0706, 100.799), (50, 1.0663, 100.3995)])
def test_l2_reinvest(pct: float, qty: float, spend: float) -> None:
    r = run(l1_bot(reinvest_profit=True, reinvest_profit_pct=pct), L1_PATH)
    assert placed(r, 2) == [[1, 94.15, qty]]
    assert r.metrics["reinvested"] == pytest.approx(spend - 100, abs=1e-10)


# ------------------------------------------------------------------- level choice


def test_extension_up_and_stacking_at_the_range_edges() -> None:
    # Every sell active when 99 fills: the sell goes one level up (106.15) within high 110...
    r = run(l1_bot(), [FLAT, FLAT, (100, 100, 99, 99), FLAT])
    assert placed(r, 2) == [[-1, 106.15, 1.0101]]
    assert r.metrics["known_sell_levels"] == 6
    # ...but stacks on the highest sell (105.10) when 106.15 is above high.
    r = run(l1_bot(high_price=105.5), [FLAT, FLAT, (100, 100, 99, 99), FLAT])
    assert placed(r, 2) == [[-1, 105.10, 1.0101]]
    assert r.metrics["known_sell_levels"] == 5
    # Buys stack on the lowest buy (95.10) when the next level (94.148) is below low.
    r = run(l1_bot(low_price=94.5), L1_PATH)
    assert placed(r, 2) == [[1, 95.10, 1.0515]]
    assert r.metrics["known_buy_levels"] == 5


def test_known_levels_cap_stacks_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    bot = l1_bot(max_known_levels=10)
    r = run(bot, L1_PATH)
    assert placed(r, 2) == [[1, 95.10, 1.0515]]  # no 11th level: stacked
    with caplog.at_level(logging.WARNING, logger="strategies.loop"):
        m = bot.metrics()
    assert m["known_levels_capped"] and m["known_levels"] == 10
    assert "known levels" in caplog.text
    assert r.metrics["known_levels_capped"]


# ----------------------------------------------------------------- exits, commands


def test_price_target_take_profit_closes_to_quote_and_completes() -> None:
    bot = l1_bot(take_profit_type="PRICE_TARGET", take_profit_price=102.5, exit_currency="QUOTE")
    top = (102.5, 102.5, 102.5, 102.5)
    r = run(bot, [FLAT, FLAT, (100, 102.5, 100, 102.5), top, top])
    # 101 and 102.01 sold on the way; at 102.5 the rest is cancelled and 3.0 X sold at market.
    close = r.fills.iloc[-1]
    assert close[["side", "qty", "price"]].tolist() == [-1, 3.0, 102.5]
    m = r.metrics
    assert m["bot_state"] == "COMPLETED" and m["base_balance"] == pytest.approx(0, abs=1e-12)
    assert resting(r).empty
    assert bot.transitions()[-1]["trigger"] == "done"


def test_pnl_take_profit_level_and_close_to_base() -> None:
    bot = l1_bot(take_profit_type="TOTAL_PNL_PERCENT", take_profit_pct=1, exit_currency="BASE")
    r = run(bot, [FLAT, FLAT, FLAT])
    m = r.metrics
    # quote + base·p − I ≥ 1%·I  ⇔  p ≥ (1.01·1001 − quote)/base
    assert m["take_profit_level"] == pytest.approx(
        (1.01 * 1001 - m["quote_balance"]) / m["base_balance"], rel=1e-12
    )
    assert m["take_profit_level"] == pytest.approx((1011.01 - 500.5) / 5, abs=1e-9)
    # A rise to 104: four sells fill (each moves the level), then the TP fires at the next
    # open and the quote buys base back.
    top = (104.0, 104.0, 104.0, 104.0)
    rows = [FLAT, FLAT, FLAT, (100, 104, 100, 104), top, top]
    tp = {"take_profit_type": "TOTAL_PNL_PERCENT", "take_profit_pct": 1, "exit_currency": "BASE"}
    r = run(l1_bot(**tp), rows)
    m = r.metrics
    assert m["bot_state"] == "COMPLETED"
    assert m["total_pnl"] >= 0.01 * 1001 - 1.0  # (the exit buy's taker fee is on top)
    last = r.fills.iloc[-1]
    assert last["side"] == 1 and last["price"] == 104
    assert m["quote_balance"] < 104 * 1.001 * 0.0001 + 1e-9  # the quote went into base


def test_stop_keeps_both_close_sells_kill_sells_and_add_funds_is_rejected() -> None:
    bot = l1_bot(commands={2: "ADD_FUNDS", 3: "STOP"})
    r = run(bot, [FLAT] * 5)
    m = r.metrics
    assert m["add_funds_rejected"] == 1
    assert m["bot_state"] == "STOPPED" and resting(r).empty
    assert (r.orders["done_bar"] <= 3).all() and m["base_balance"] == 5.0  # BOTH: keep both
    r = run(l1_bot(commands={3: "CLOSE"}, exit_currency="QUOTE"), [FLAT] * 5)
    assert r.fills.iloc[-1][["side", "qty"]].tolist() == [-1, 5.0]
    assert r.metrics["bot_state"] == "STOPPED"
    r = run(l1_bot(commands={3: "KILL"}, exit_currency="BASE"), [FLAT] * 5)
    assert r.fills.iloc[-1][["side", "qty"]].tolist() == [-1, 5.0]


def test_pause_defers_the_counter_order() -> None:
    bot = l1_bot(commands={1: "PAUSE", 3: "RESUME", 4: -1})
    r = run(bot, [FLAT, FLAT, UP_101, FLAT, FLAT])
    assert r.fills.iloc[-1][["side", "price"]].tolist() == [-1, 101.0]
    assert placed(r, 2) == []
    assert placed(r, 3) == [[1, 94.15, 1.0621]]
    assert r.metrics["ignored_signals"] == 1
    assert [t["to"] for t in bot.transitions()] == ["ACTIVE", "PAUSED", "ACTIVE"]


def test_insufficient_funds_pauses_and_polls() -> None:
    bot = l1_bot()
    r = run(bot, [FLAT] * 8, cash=900)  # the market buy (500.5) no longer fits
    assert (r.orders["status"] == "REJECTED").sum() == 1
    m = r.metrics
    assert m["bot_state"] == "PAUSED" and m["funds_pauses"] == 1
    assert bot.transitions()[-1]["trigger"] == "insufficient_funds"


def test_setup_fails_without_a_sell_level_or_below_the_minimums() -> None:
    r = run(l1_bot(high_price=100.5), [FLAT] * 3)
    assert r.orders.empty and r.metrics["bot_state"] == "ERROR" and r.metrics["setup_failed"]
    strict = X.model_copy(update={"min_notional": 150.0})
    r = run(l1_bot(), [FLAT] * 3, instrument=strict)
    assert r.orders.empty and r.metrics["bot_state"] == "ERROR"


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"order_count": 11}, "order_count"),
        ({"order_count": 8}, "order_count"),
        ({"order_count": 42}, "order_count"),
        ({"order_distance": 0.05}, "order_distance"),
        ({"order_distance": 51}, "order_distance"),
        ({"low_price": 120, "high_price": 110}, "low_price"),
        ({"investment": 0}, "investment"),
        ({"reinvest_profit_pct": 101}, "reinvest_profit_pct"),
        ({"take_profit_type": "TOTAL_PNL_PERCENT"}, "take_profit_pct"),
        ({"take_profit_type": "PRICE_TARGET"}, "take_profit_price"),
        ({"take_profit_type": "TOTAL_PNL_PERCENT", "take_profit_pct": 0.01}, "take_profit_pct"),
        ({"exit_currency": "USD"}, "exit_currency"),
        ({"max_known_levels": 501}, "max_known_levels"),
    ],
)
def test_invalid_configs_name_the_field(fields: dict[str, object], field: str) -> None:
    base: dict[str, object] = {
        "investment": 1001,
        "low_price": 90,
        "high_price": 110,
        "order_distance": 1,
        "order_count": 10,
    }
    with pytest.raises(ConfigError) as err:
        Loop(**{**base, **fields})
    assert field in str(err.value)


def test_camel_case_aliases_and_margin_refused() -> None:
    c = LoopConfig.parse(
        {
            "investment": 1001,
            "lowPrice": 90,
            "orderDistance": 1,
            "orderCount": 10,
            "exitCurrency": "QUOTE",
        }
    )
    assert c.order_count == 10 and c.exit_currency == "QUOTE" and c.high_price is None
    perp = Instrument(symbol="X", margin=True, tick=0.01, lot=0.0001)
    with pytest.raises(ConfigError, match="spot"):
        run(l1_bot(), [FLAT] * 2, instrument=perp)


# -------------------------------------------------------------- real data, checkpoint

ETH = Instrument(
    symbol="ETH-BTC", tick=1e-6, lot=0.001, min_notional=1e-4, maker_fee=0.001, taker_fee=0.001
)


def parity_bot() -> Loop:
    return Loop(
        investment=2.0,
        low_price=0.08,
        high_price=0.12,
        order_distance=0.6,
        order_count=20,
        reinvest_profit=True,
        reinvest_profit_pct=50,
    )


def test_compiled_and_python_paths_agree_on_real_data(eth_btc: pd.DataFrame) -> None:
    compiled_bot, python_bot = parity_bot(), parity_bot()
    settings_: dict[str, Any] = {"instrument": ETH, "cash": 2.1, "symbol": "ETH-BTC"}
    compiled = backtest(compiled_bot, eth_btc, mode="compiled", **settings_)
    python = backtest(python_bot, eth_btc, mode="python", **settings_)
    # A sell goes to the farthest gap, so a month of ETH-BTC makes few, wide cycles.
    assert len(compiled.fills) > 25 and compiled.metrics["cycles"] > 10
    assert compiled.metrics["known_levels"] > 20  # it extended as the price moved
    pd.testing.assert_frame_equal(compiled.orders, python.orders)
    pd.testing.assert_frame_equal(compiled.fills, python.fills)
    np.testing.assert_array_equal(compiled_bot.state, python_bot.state)


def test_checkpoint_round_trip(eth_btc: pd.DataFrame) -> None:
    bot = parity_bot()
    backtest(bot, eth_btc.iloc[:2000], instrument=ETH, cash=2.1, symbol="ETH-BTC")
    saved = bot.checkpoint()
    other = parity_bot()
    other.restore(saved)
    np.testing.assert_array_equal(other.state, bot.state)
    assert other.transitions() == bot.transitions()
    assert other.metrics() == bot.metrics()
    assert other.slots()["side"].tolist() == bot.slots()["side"].tolist()
    with pytest.raises(ValueError, match="loop"):
        other.restore(saved.replace('"loop"', '"btd"'))


# ----------------------------------------------------------------------- properties


def open_counts(r: BacktestResult, n_bars: int) -> np.ndarray:
    o = r.orders[r.orders["status"] != "REJECTED"]
    done = np.where(o["done_bar"] < 0, n_bars, o["done_bar"]).astype(np.int64)
    placed_bar = o["placed_bar"].to_numpy()
    return np.array([int(((placed_bar <= t) & (done > t)).sum()) for t in range(n_bars)])


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    half=st.integers(5, 10),
    distance=st.floats(0.3, 2.0),
    reinvest=st.sampled_from([None, 50.0, 100.0]),
    high=st.sampled_from([None, 103.0, 120.0]),
    stop=st.sampled_from([None, (200, "BOTH"), (300, "QUOTE"), (250, "BASE")]),
)
def test_properties_on_random_walks(
    seed: int,
    half: int,
    distance: float,
    reinvest: float | None,
    high: float | None,
    stop: tuple[int, str] | None,
) -> None:
    n_bars = 400
    bars = random_walk(n_bars, seed, vol=0.004)
    inst = X.model_copy(update={"min_notional": 5.0})
    invest = 2000.0
    n = 2 * half
    bot = Loop(
        investment=invest,
        low_price=80,
        high_price=high,
        order_distance=distance,
        order_count=n,
        reinvest_profit=reinvest is not None,
        reinvest_profit_pct=reinvest or 100.0,
        exit_currency=stop[1] if stop else "BOTH",
        commands={stop[0]: "STOP"} if stop else {},
    )
    cash = invest + 20  # 100% reinvest may spend a hair over I (its fee is on top)
    r = backtest(bot, bars, instrument=inst, cash=cash, symbol="X", close_at_end=False)
    m = r.metrics
    o = r.orders
    assert m["bot_state"] in ("ACTIVE", "STOPPED", "ERROR")
    e, d = m["entry_price"], distance / 100
    if m["bot_state"] == "ERROR":  # no sell level under `high`: nothing is sent
        assert o.empty and high is not None and e * (1 + d) > high
        return
    # The layout: n/2 levels a side, skipping those beyond low or high.
    mb = sum(e * (1 - d) ** i >= 80 for i in range(1, half + 1))
    ms = sum(high is None or e * (1 + d) ** j <= high for j in range(1, half + 1))
    n_orders = mb + ms
    counts = open_counts(r, n_bars)
    # Never more than n orders (plus the one market order in flight).
    assert counts.max() <= n + 1
    # The order count stays constant while it runs.
    end = stop[0] if stop and m["bot_state"] == "STOPPED" else n_bars - 1
    assert (counts[1:end] == n_orders).all()
    # Nothing below the minimums; nothing refused.
    assert not (o["reason"] == "SKIPPED_MIN").any()
    assert not (o["reason"] == "INSUFFICIENT_FUNDS").any()
    limits = o[o["type"] == "LIMIT"]
    assert (limits["qty"] * limits["price"] >= 5.0 - 1e-9).all()
    # The bot's books are the fill ledger: base and quote conserved net of fees.
    f = r.fills
    signed = f["side"] * f["qty"]
    assert m["base_balance"] == pytest.approx(signed.sum(), abs=1e-9)
    flows = -(signed * f["price"]).sum() - f["fee"].sum()
    assert m["quote_balance"] == pytest.approx(invest + flows, abs=1e-7)
    assert r.equity.iloc[-1] == pytest.approx(
        cash + flows + m["base_balance"] * bars["close"].iloc[-1], rel=1e-9
    )
    # Every cycle realises qty·(sell−b) − both fees: realised + what the open sells would make
    # at the last price equals the equity change (all base sits in the sells).
    if not stop or stop[1] == "BOTH":
        s = bot.slots()
        sells = s["side"] < 0
        price = float(bars["close"].iloc[-1])
        unrealized = (s["target"][sells] * (price - s["pair"][sells]) - s["open_fee"][sells]).sum()
        total = m["quote_balance"] + m["base_balance"] * price - invest
        assert total == pytest.approx(m["bot_profit"] + unrealized, abs=1e-6)
        assert m["base_balance"] == pytest.approx(s["target"][sells].sum(), abs=1e-9)
    # Levels: buys never below low, sells never above high (except stacked at the top).
    buys = limits[limits["side"] == 1]
    assert (buys["price"] >= 80 - 0.01).all()
    if high is not None:
        assert (limits[limits["side"] == -1]["price"] <= high + 0.01).all()
    # A stopped bot holds nothing.
    if m["bot_state"] == "STOPPED":
        assert stop is not None
        assert resting(r).empty
        assert (o["placed_bar"] <= stop[0]).all()


# ------------------------------------------------- partial fills, external cancels


@pytest.mark.parametrize("seed", [1, 5])
def test_partial_fills_keep_the_books(seed: int) -> None:
    bars = random_walk(400, seed, vol=0.004)
    bars["volume"] = 3.0
    bot = Loop(investment=2000, low_price=80, order_distance=0.5, order_count=10)
    inst = X.model_copy(update={"min_notional": 5.0})
    r = backtest(
        bot, bars, instrument=inst, cash=2020, symbol="X", close_at_end=False, participation=0.2
    )
    o, f, m = r.orders, r.fills, r.metrics
    assert f.groupby("order_id").size().max() > 1  # orders filled in slices
    assert not (o["reason"] == "INSUFFICIENT_FUNDS").any()
    signed = f["side"] * f["qty"]
    assert m["base_balance"] == pytest.approx(signed.sum(), abs=1e-9)
    assert m["quote_balance"] == pytest.approx(2000 - (signed * f["price"]).sum() - f["fee"].sum())
    assert m["active_buys"] + m["active_sells"] == 10


def test_an_external_cancel_leaves_a_gap_that_the_next_buy_fills() -> None:
    from tradetower import kernel_abi as K

    bot = l1_bot()
    run(bot, [FLAT] * 3)
    actions = np.zeros((16, K.N_ACTION))
    cancel = np.zeros(K.N_EVENT)
    cancel[K.E_TYPE] = K.EV_CANCEL
    cancel[K.E_TAG] = 1002  # slot 2: BUY 1.0306@97.03
    cancel[K.E_CODE] = K.R_USER
    cancel[K.E_TIME] = 1.0
    assert Loop.kernel(bot.params, bot.state, cancel, actions) == 0
    assert bot.metrics()["active_buys"] == 4 and bot.metrics()["external_cancels"] == 1
    # SELL 1@101 fills: its buy goes to the gap at 97.03, not to a new level below.
    fill = np.zeros(K.N_EVENT)
    fill[K.E_TYPE] = K.EV_FILL
    fill[K.E_TAG] = 1005
    fill[K.E_SIDE] = K.SELL
    fill[K.E_PRICE] = 101.0
    fill[K.E_QTY] = 1.0
    fill[K.E_FEE] = 0.101
    fill[K.E_TIME] = 2.0
    n = Loop.kernel(bot.params, bot.state, fill, actions)
    place = actions[0]
    assert n == 1 and place[K.A_KIND] == K.A_PLACE
    assert (place[K.A_SIDE], place[K.A_PRICE], place[K.A_QTY]) == (1.0, 97.03, 1.0306)
    assert bot.metrics()["bot_profit"] == pytest.approx(0.799, abs=1e-10)
