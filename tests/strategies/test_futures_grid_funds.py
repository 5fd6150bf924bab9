"""Futures Grid: insufficient funds (STRATEGIES.md §4, the shared funds rule) and add funds.

The grid is FG2 (LONG, GEOMETRIC 100–146.41, N=5, P=121, M=100, L=3, Q=0.662): at start it
market-buys 1.324 for cells 2 and 3 and rests BUY 0.662@110 (cell 1) and BUY 0.662@100 (cell 0).
The account holds less cash than M, so the venue refuses a buy once the position's margin
``|pos|·px·(1/L + fee)`` would exceed the equity. The bars are one minute apart: a refusal at
bar t arms polls due at t+0/15/30 s (they run at bar t's close), t+60 s (bar t+1), t+120 s
(bar t+2) and t+300 s (bar t+5).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_bars
from test_futures_grid import fg1, fg2, flat, perp

from simulator import backtest
from simulator.result import BacktestResult
from strategies.futures_grid import FuturesGrid, futures_grid_on_event_nb
from tradetower import kernel_abi as K
from tradetower.bots import codes as C
from tradetower.domain.bars import MarketData
from tradetower.errors import ConfigError

Row = tuple[float, float, float, float]
BUY_110: tuple[int, str, float | None, float, bool] = (1, "LIMIT", 110.0, 0.662, False)


def run(
    bot: FuturesGrid, rows: list[Row], cash: float, mode: str = "auto", max_actions: int = 256
) -> BacktestResult:
    result: BacktestResult = backtest(
        bot,
        make_bars(rows),
        instrument=perp(3),
        cash=cash,
        close_at_end=False,
        mode=mode,
        max_actions=max_actions,
    )
    return result


def placed(r: BacktestResult, bar: int) -> list[tuple[int, str, float | None, float, bool]]:
    """(side, type, price or None for a market order, qty, reduce-only), sorted, of the orders
    placed while bar ``bar`` was handled."""
    o = r.orders[r.orders["placed_bar"] == bar]
    return sorted(
        (
            (int(s), t, round(float(p), 2) if p == p else None, float(q), bool(ro))
            for s, t, p, q, ro in zip(
                o["side"], o["type"], o["price"], o["qty"], o["reduce_only"], strict=True
            )
        ),
        key=str,
    )


def history(bot: FuturesGrid) -> list[tuple[int, str, str]]:
    return [(t["bar"], t["to"], t["trigger"]) for t in bot.transitions()]


# Bar 2 reaches 110: the buy there is refused (equity 45.36 < 1.324·110·0.333533 = 48.58,
# the margin of the position alone). Bar 3 rises to 133.1: cell 2's close fills (it kept
# resting while PAUSED), which frees margin.
DIP = [flat(121), flat(121), (121, 121, 110, 110)]
RALLY = (110, 133.1, 110, 133.1)


# --------------------------------------------------------------------- the kernel, event by event

T0 = 1_704_067_200_000.0  # 2024-01-01 00:00 UTC, the first bar


def started() -> tuple[FuturesGrid, np.ndarray]:
    bot = fg2()
    bot.prepare(MarketData.from_frames({"X-PERP": make_bars([flat(121)] * 2)}))
    bot.check({"X-PERP": perp(3)})
    params = np.ascontiguousarray(bot.params)
    feed(bot, params, K.EV_START, T0, price=121.0)
    return bot, params


def feed(
    bot: FuturesGrid,
    params: np.ndarray,
    kind: int,
    time: float,
    *,
    tag: float = 0.0,
    code: float = 0.0,
    price: float = 0.0,
    equity: float = 0.0,
    rows: int = 64,
) -> np.ndarray:
    """Hand the kernel one event with ``rows`` action rows; the actions it wrote."""
    row = np.zeros(K.N_EVENT)
    row[K.E_TYPE] = kind
    row[K.E_TIME] = time
    row[K.E_TAG] = tag
    row[K.E_CODE] = code
    row[K.E_PRICE] = price
    row[K.E_EQUITY] = equity
    row[K.E_INST] = 0 if price > 0 else -1  # a timer names no instrument
    row[K.E_MARK] = price
    actions = np.zeros((rows, K.N_ACTION))
    n = int(futures_grid_on_event_nb(params, bot.state, row, actions))
    return actions[:n]


def test_a_funds_refusal_pauses_once_and_arms_the_six_polls() -> None:
    bot, params = started()
    t = T0 + 120_000
    acts = feed(bot, params, K.EV_CANCEL, t, tag=1.0, code=K.R_INSUFFICIENT_FUNDS)
    assert acts[:, K.A_KIND].tolist() == [K.A_SET_TIMER] * 6
    assert (acts[:, K.A_ID] - t).tolist() == [0, 15_000, 30_000, 60_000, 120_000, 300_000]
    assert acts[:, K.A_TAG].tolist() == [2000, 2001, 2002, 2003, 2004, 2005]
    assert [(x["to"], x["trigger"]) for x in bot.transitions()] == [
        ("ACTIVE", "user_start"),
        ("PAUSED", "insufficient_funds"),
    ]
    # The buy @100 refused too, in the same episode: no second pause, no new polls.
    acts = feed(bot, params, K.EV_CANCEL, t + 1_000, tag=0.0, code=K.R_INSUFFICIENT_FUNDS)
    assert len(acts) == 0 and len(bot.transitions()) == 2
    assert bot.funds_status()["funds_pauses"] == 1 and bot.funds_status()["funds_polling"]


def test_a_poll_resumes_when_the_free_margin_covers_the_refused_orders() -> None:
    bot, params = started()
    t = T0 + 120_000
    feed(bot, params, K.EV_CANCEL, t, tag=1.0, code=K.R_INSUFFICIENT_FUNDS)
    feed(bot, params, K.EV_CANCEL, t, tag=0.0, code=K.R_INSUFFICIENT_FUNDS)
    need = 0.662 * (110 + 100) * (1 / 3 + 0.0002)  # flat: the free margin is the equity
    assert feed(bot, params, K.EV_TIMER, t, tag=2000, equity=need - 0.001).size == 0
    assert bot.lifecycle_state.value == "PAUSED"
    # A timer of another episode's tags is not a poll of this one.
    assert feed(bot, params, K.EV_TIMER, t, tag=2006, equity=need + 1).size == 0
    acts = feed(bot, params, K.EV_TIMER, t + 15_000, tag=2001, equity=need + 0.001)
    assert bot.transitions()[-1]["trigger"] == "funds_available"
    assert [(a[K.A_KIND], a[K.A_SIDE], a[K.A_PRICE], a[K.A_QTY], a[K.A_TAG]) for a in acts] == [
        (K.A_PLACE, 1, 100.0, 0.662, 0.0),
        (K.A_PLACE, 1, 110.0, 0.662, 1.0),
    ]
    assert not bot.funds_status()["paused_for_funds"]


def test_polls_with_no_room_at_the_pause_are_armed_by_the_first_poll() -> None:
    bot, params = started()
    t = T0 + 120_000
    acts = feed(bot, params, K.EV_CANCEL, t, tag=1.0, code=K.R_INSUFFICIENT_FUNDS, rows=2)
    assert [(a[K.A_ID] - t, a[K.A_TAG]) for a in acts] == [(0, 2000), (15_000, 2001)]
    acts = feed(bot, params, K.EV_TIMER, t, tag=2000)  # poll 0 fails and arms the rest
    assert acts[:, K.A_KIND].tolist() == [K.A_SET_TIMER] * 4
    assert (acts[:, K.A_ID] - t).tolist() == [30_000, 60_000, 120_000, 300_000]
    assert acts[:, K.A_TAG].tolist() == [2002, 2003, 2004, 2005]
    for due, tag in [(15_000, 2001), *zip(acts[:, K.A_ID] - t, acts[:, K.A_TAG], strict=True)]:
        assert feed(bot, params, K.EV_TIMER, t + due, tag=tag).size == 0
    f = bot.funds_status()  # the owed 300 s poll gave up
    assert (f["funds_polling"], f["funds_poll_warnings"], f["paused_for_funds"]) == (False, 1, True)
    assert bot.lifecycle_state.value == "PAUSED"


def test_a_waiting_poll_with_no_room_for_the_owed_polls_gives_up_with_a_warning() -> None:
    bot, params = started()
    t = T0 + 120_000
    acts = feed(bot, params, K.EV_CANCEL, t, tag=1.0, code=K.R_INSUFFICIENT_FUNDS, rows=1)
    assert [(a[K.A_ID] - t, a[K.A_TAG]) for a in acts] == [(0, 2000)]
    assert feed(bot, params, K.EV_TIMER, t, tag=2000, rows=0).size == 0  # no poll left to come
    f = bot.funds_status()
    assert (f["funds_polling"], f["funds_poll_warnings"], f["paused_for_funds"]) == (False, 1, True)


# ------------------------------------------------------------------------------- backtests


def test_funds_back_at_the_60_s_poll_resume_and_re_place_the_refused_buy() -> None:
    bot = fg2()
    r = run(bot, [*DIP, RALLY, flat(133.1)], cash=60)
    refused = r.orders[r.orders["reason"] == "INSUFFICIENT_FUNDS"]
    assert refused[["done_bar", "price", "filled"]].values.tolist() == [[2, 110.0, 0.0]]
    # The 0/15/30 s polls (bar 2) find free margin −3.19; the 60 s poll (bar 3) finds 46.55.
    assert history(bot) == [
        (0, "ACTIVE", "user_start"),
        (2, "PAUSED", "insufficient_funds"),
        (3, "ACTIVE", "funds_available"),
    ]
    # The refused buy again, and cell 2's open, due since its close filled while PAUSED.
    assert placed(r, 3) == [BUY_110, (1, "LIMIT", 121.0, 0.662, False)]
    assert r.metrics["grid_profit"] == pytest.approx(7.95252656, abs=1e-9)
    f = bot.funds_status()
    assert (f["funds_pauses"], f["funds_poll_warnings"], f["paused_for_funds"]) == (1, 0, False)


def test_a_partial_refusal_re_places_the_rest_of_the_open() -> None:
    # With 80 of cash the buy @110 fills 0.457 (what the margin allows); the rest is refused.
    bot = fg2()
    r = run(bot, [*DIP, RALLY, flat(133.1)], cash=80)
    buy = r.orders[r.orders["reason"] == "INSUFFICIENT_FUNDS"]
    assert buy[["price", "qty", "filled"]].values.tolist() == [[110.0, 0.662, 0.457]]
    assert history(bot)[-1] == (3, "ACTIVE", "funds_available")
    assert placed(r, 3) == [(1, "LIMIT", 110.0, 0.205, False), (1, "LIMIT", 121.0, 0.662, False)]
    assert bot.cells()[1]["state"] == "OPEN_WAIT" and bot.cells()[1]["qty"] == 0.457


def test_all_polls_failing_stays_paused_until_a_user_resume() -> None:
    bot = fg2()
    run(bot, [*DIP] + [flat(110)] * 4, cash=60)  # bar 6: the 300 s poll is still to come
    f = bot.funds_status()
    assert (f["funds_polling"], f["funds_poll_warnings"]) == (True, 0)
    bot = fg2()
    r = run(bot, [*DIP] + [flat(110)] * 6, cash=60)  # bars 3–8
    f = bot.funds_status()
    assert bot.lifecycle_state.value == "PAUSED"
    assert (f["funds_polling"], f["funds_poll_warnings"], f["paused_for_funds"]) == (False, 1, True)
    assert len(r.orders[r.orders["placed_bar"] > 2]) == 0
    # A user RESUME at bar 8 re-places the refused buy (the funds are still short: refused
    # again at bar 9, a new episode).
    bot = fg2(commands={8: C.CMD_RESUME})
    r = run(bot, [*DIP] + [flat(110)] * 7, cash=60)
    assert history(bot)[2:] == [(8, "ACTIVE", "user_resume"), (9, "PAUSED", "insufficient_funds")]
    assert placed(r, 8) == [BUY_110]
    assert bot.funds_status()["funds_pauses"] == 2


def test_add_funds_resumes_a_bot_paused_for_funds() -> None:
    bot = fg2(add_funds={8: 100})
    r = run(bot, [*DIP] + [flat(110)] * 6, cash=60)
    assert history(bot)[-1] == (8, "ACTIVE", "funds_available")
    # M' = 200: Q' = ⌊(200/(1/3 + 0.0005))/452⌋ = 1.325 (Σ open = 100 + 110 + 121 + 121).
    assert r.metrics["order_qty"] == 1.325
    cancelled = r.orders[(r.orders["reason"] == "USER") & (r.orders["done_bar"] == 8)]
    assert sorted(cancelled["price"]) == [100.0, 133.1, 146.41]
    assert placed(r, 8) == [
        (-1, "LIMIT", 133.1, 0.662, True),
        (-1, "LIMIT", 146.41, 0.662, True),
        (1, "LIMIT", 100.0, 1.325, False),
        (1, "LIMIT", 110.0, 1.325, False),
    ]
    f = bot.funds_status()
    assert (f["investment"], f["add_funds_count"], f["funds_poll_warnings"]) == (200.0, 1, 1)


def test_activation_market_order_refused_for_funds_buys_the_rest_at_a_poll() -> None:
    # 50 of cash: the market buy fills 1.237 of 1.324 at 121, the rest is refused. Cell 2
    # gets 0.662 and its close; cell 3 keeps 0.575 and waits. At 130 (bar 2, the 60 s poll;
    # free margin 7.455 ≥ 0.087·130·(1/3 + 0.0005) = 3.775) the rest is bought at market.
    bot = fg2()
    r = run(bot, [flat(121), flat(121), flat(130), flat(130), flat(130)], cash=50)
    assert r.fills[["bar", "qty", "price"]].values.tolist() == [
        [1, 1.237, 121.0],
        [3, 0.087, 130.0],
    ]
    assert history(bot) == [
        (0, "ACTIVE", "user_start"),
        (1, "PAUSED", "insufficient_funds"),
        (2, "ACTIVE", "funds_available"),
    ]
    assert placed(r, 1) == [(-1, "LIMIT", 133.1, 0.662, True)]  # cell 2's close, before the pause
    assert placed(r, 2) == [(1, "MARKET", None, 0.087, False)]
    assert placed(r, 3) == [(-1, "LIMIT", 146.41, 0.662, True)]
    cell3 = bot.cells()[3]
    assert cell3["qty"] == pytest.approx(0.662, abs=1e-12)
    assert cell3["open_price"] == pytest.approx((0.575 * 121 + 0.087 * 130) / 0.662, abs=1e-9)


# The buy @110 is refused at bar 2; the 60 s poll resumes at bar 3 (the rally fills cell 2's
# close); bar 4 falls back to 110: the re-placed buy @121 fills, the one @110 is refused again.
TWICE = [*DIP, RALLY, (133.1, 133.1, 110, 110)]


def test_a_poll_left_over_from_an_earlier_episode_does_not_end_the_next() -> None:
    # The first episode's 300 s poll is due at bar 7; the second episode's at bar 9.
    bot = fg2()
    run(bot, [*TWICE] + [flat(110)] * 4, cash=60)  # to bar 8
    f = bot.funds_status()
    assert history(bot)[-1] == (4, "PAUSED", "insufficient_funds")
    assert (f["funds_pauses"], f["funds_poll_warnings"], f["funds_polling"]) == (2, 0, True)
    bot = fg2()
    run(bot, [*TWICE] + [flat(110)] * 5, cash=60)  # to bar 9
    assert bot.funds_status()["funds_poll_warnings"] == 1


def test_parity_compiled_and_python_on_a_funds_case() -> None:
    rows = [*TWICE] + [flat(110)] * 5 + [flat(125), flat(125)]

    def make() -> FuturesGrid:
        return fg2(add_funds={11: 50})

    compiled_bot, python_bot = make(), make()
    compiled = run(compiled_bot, rows, cash=60, mode="compiled")
    python = run(python_bot, rows, cash=60, mode="python")
    assert (compiled.orders["reason"] == "INSUFFICIENT_FUNDS").sum() == 2
    pd.testing.assert_frame_equal(compiled.orders, python.orders)
    pd.testing.assert_frame_equal(compiled.fills, python.fills)
    assert compiled_bot.transitions() == python_bot.transitions()
    assert compiled_bot.funds_status() == python_bot.funds_status()
    np.testing.assert_array_equal(compiled_bot.state, python_bot.state)


# ------------------------------------------------------------------------------- add funds


def test_add_funds_re_sizes_q_and_re_places_every_order() -> None:
    # FG1: Q = ⌊498.7531/400⌋ = 1.246. Bar 1 buys at 95 (cell 1 holds 1.246, its close rests
    # @100). Adding 100 at bar 2: Q' = ⌊997.5062/400⌋ = 2.493 (not 2·1.246).
    bot = fg1(add_funds={2: 100})
    rows = [flat(100), (100, 100, 95, 95), flat(95), (95, 100, 95, 100), flat(100)]
    r = backtest(bot, make_bars(rows), instrument=perp(5), cash=1_000, close_at_end=False)
    o = r.orders
    assert len(o[(o["done_bar"] == 2) & (o["reason"] == "USER")]) == 4
    assert placed(r, 2) == [
        (-1, "LIMIT", 100.0, 1.246, False),  # the held cell's close, for what it holds
        (-1, "LIMIT", 105.0, 2.493, False),
        (-1, "LIMIT", 110.0, 2.493, False),
        (1, "LIMIT", 90.0, 2.493, False),
    ]
    # Bar 3: the close fills (the FG1 long cycle) and the cell reopens with Q'.
    assert placed(r, 3) == [(1, "LIMIT", 95.0, 2.493, False)]
    m = r.metrics
    assert m["grid_profit"] == pytest.approx(6.181406, abs=1e-9) and m["cycles"] == 1
    assert m["order_qty"] == 2.493 and m["bot_state"] == "ACTIVE"
    f = bot.funds_status()
    assert (f["investment"], f["add_funds_count"], f["add_funds_refused"]) == (200.0, 1, 0)


def test_add_funds_is_refused_while_waiting_and_bad_amounts_are_errors() -> None:
    bot = fg1(trigger_price=104, add_funds={1: 50})
    r = backtest(bot, make_bars([flat(100)] * 3), instrument=perp(5), cash=1_000)
    assert r.orders.empty and bot.lifecycle_state.value == "WAITING"
    f = bot.funds_status()
    assert (f["add_funds_refused"], f["add_funds_count"], f["investment"]) == (1, 0, 100.0)
    with pytest.raises(ConfigError, match="add_funds"):
        fg1(add_funds={3: 0})
    with pytest.raises(ConfigError, match="add_funds"):
        fg1(add_funds={-1: 10})


# Owed polls: FG2 started at 105 market-buys Q = 0.713 for all four cells (2.852); with 85 of
# cash it fills 2.424 at bar 1 and the rest is refused: cells 0–2 get their closes (110, 121,
# 133.1), cell 3 keeps 0.285 and waits. With max_actions=8 the closes take three rows, so the
# pause arms the polls up to 120 s (bar 3) and owes the 300 s one (bar 6); poll 0 arms it.
# Bar 5 rises to 115: cell 0's close fills and frees margin, so the 300 s poll resumes and the
# rest (0.428) is bought at market.
OWED_ROWS = 8
RISE = [flat(105)] * 5 + [(105, 115, 105, 115), flat(115), flat(115)]


def test_polls_with_too_few_action_rows_still_give_up_at_300_s() -> None:
    bot = fg2()
    run(bot, [flat(105)] * 6, cash=85, max_actions=OWED_ROWS)  # to bar 5
    f = bot.funds_status()
    assert (f["funds_polling"], f["funds_poll_warnings"]) == (True, 0)
    bot = fg2()
    r = run(bot, [flat(105)] * 7, cash=85, max_actions=OWED_ROWS)  # to bar 6
    assert history(bot) == [(0, "ACTIVE", "user_start"), (1, "PAUSED", "insufficient_funds")]
    f = bot.funds_status()
    assert (f["funds_polling"], f["funds_poll_warnings"], f["paused_for_funds"]) == (False, 1, True)
    assert r.orders[["price", "qty", "filled"]].fillna(0).values.tolist() == [
        [0.0, 2.852, 2.424],
        [110.0, 0.713, 0.0],
        [121.0, 0.713, 0.0],
        [133.1, 0.713, 0.0],
    ]


def test_an_owed_300_s_poll_resumes_as_with_room_for_every_poll() -> None:
    few, room = fg2(), fg2()
    r1 = run(few, RISE, cash=85, max_actions=OWED_ROWS)
    r2 = run(room, RISE, cash=85)
    assert history(few) == [
        (0, "ACTIVE", "user_start"),
        (1, "PAUSED", "insufficient_funds"),
        (6, "ACTIVE", "funds_available"),
    ]
    assert placed(r1, 6) == [(1, "LIMIT", 100.0, 0.713, False), (1, "MARKET", None, 0.428, False)]
    assert r1.fills[["bar", "qty", "price"]].values.tolist() == [
        [1, 2.424, 105.0],
        [5, 0.713, 110.0],
        [7, 0.428, 115.0],
    ]
    pd.testing.assert_frame_equal(r1.orders, r2.orders)
    pd.testing.assert_frame_equal(r1.fills, r2.fills)
    assert few.funds_status() == room.funds_status()
    np.testing.assert_array_equal(few.state, room.state)


def test_parity_compiled_and_python_on_owed_polls() -> None:
    compiled_bot, python_bot = fg2(), fg2()
    compiled = run(compiled_bot, RISE, cash=85, mode="compiled", max_actions=OWED_ROWS)
    python = run(python_bot, RISE, cash=85, mode="python", max_actions=OWED_ROWS)
    assert compiled_bot.transitions()[-1]["trigger"] == "funds_available"
    pd.testing.assert_frame_equal(compiled.orders, python.orders)
    pd.testing.assert_frame_equal(compiled.fills, python.fills)
    assert compiled_bot.transitions() == python_bot.transitions()
    np.testing.assert_array_equal(compiled_bot.state, python_bot.state)
