"""Grid and insufficient funds (STRATEGIES.md §4, §5 item 11): the shared rule of
tradetower.bots.funds on small hand-made bars.

The BASE-sized G1 grid with cash = investment: at bar 4 the price runs to 161.1, trailing up drops
the bottom buy (100) and places a top buy at 146.41 that needs more quote than the account has
free. A gap down to 105 later fills the buys at 110, 121 and 133.1 below their limits, which frees
the quote their reservations held over: that is when the funds are back.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import make_bars

from simulator import backtest
from simulator.result import BacktestResult
from strategies.grid import Grid, grid_on_event_nb
from tradetower import kernel_abi as K
from tradetower.domain.instrument import Instrument

X = Instrument(symbol="X/USD", tick=0.01, lot=0.0001, maker_fee=0.001, taker_fee=0.001)
G1_CONFIG: dict[str, Any] = {
    "low_price": 100,
    "high_price": 146.41,
    "grid_levels": 5,
    "investment": 520.8203,
}
FLAT = (121.0, 121.0, 121.0, 121.0)
TOP = (161.1, 161.1, 161.1, 161.1)
GAP = (105.0, 105.0, 105.0, 105.0)
RISE = [
    FLAT,
    FLAT,
    (121, 133.1, 121, 133.1),
    (133.1, 146.41, 133.1, 146.41),
    (146.41, 161.1, 146.41, 161.1),
]
Order = tuple[int, str, float | None, float]  # side, type, limit price (None: market), qty
Q = 1.1511  # base per cell
REFUSED_BUY: Order = (1, "LIMIT", 146.41, Q)
PAUSE = (4, "PAUSED", "insufficient_funds")


def run_base(
    tail: list[tuple[float, float, float, float]], mode: str = "compiled", **fields: Any
) -> tuple[Grid, BacktestResult]:
    bot = Grid(**G1_CONFIG, order_size_currency="BASE", pump_protection=False, **fields)
    bars = make_bars(RISE + tail)
    r = backtest(bot, bars, instrument=X, cash=520.8203, mode=mode, close_at_end=False)
    return bot, r


def moves(bot: Grid) -> list[tuple[int, str, str]]:
    return [(t["bar"], t["to"], t["trigger"]) for t in bot.transitions()]


def _orders(o: pd.DataFrame) -> list[Order]:
    prices = [
        None if kind == "MARKET" else round(float(p), 2)
        for kind, p in zip(o.type, o.price, strict=True)
    ]
    return [
        (int(side), str(kind), price, round(float(qty), 4))
        for side, kind, price, qty in zip(o.side, o.type, prices, o.qty, strict=True)
    ]


def placed_at(r: BacktestResult, bar: int) -> list[Order]:
    return sorted(_orders(r.orders[r.orders.placed_bar == bar]))


def rejected(r: BacktestResult) -> list[tuple[int, Order]]:
    """(bar, order) of every order the venue refused; all of them for funds."""
    o = r.orders[r.orders.status == "REJECTED"]
    assert set(o.reason) <= {"INSUFFICIENT_FUNDS"}
    return list(zip(o.placed_bar.astype(int), _orders(o), strict=True))


def replaced_orders(qty: float) -> list[Order]:
    """The three sells held back while paused, and the refused top buy."""
    sells = [(-1, "LIMIT", price, qty) for price in (121.0, 133.1, 146.41)]
    return sorted([*sells, (1, "LIMIT", 146.41, qty)])


# ------------------------------------------------------------------------- pause and polls


def test_refusals_pause_once_per_episode_and_arm_six_polls() -> None:
    armed: list[tuple[int, float, float]] = []

    def spy(params, state, event, actions):  # type: ignore[no-untyped-def]
        n = grid_on_event_nb(params, state, event, actions)
        for row in actions[:n]:
            if row[K.A_KIND] == K.A_SET_TIMER:
                due_s = (row[K.A_ID] - event[K.E_TIME]) / 1000.0
                armed.append((int(event[K.E_BAR]), float(due_s), float(row[K.A_TAG])))
        return n

    class SpyGrid(Grid):
        kernel = staticmethod(spy)  # type: ignore[assignment]

    # Tripling the investment at bar 2 with 1000 of cash: the top-up market buy goes through,
    # then both re-sized buys are refused; one pause, one set of polls.
    bot = SpyGrid(**G1_CONFIG, pump_protection=False, add_funds={2: 1041.6406})
    r = backtest(bot, make_bars([FLAT] * 10), instrument=X, cash=1000, mode="python")
    assert rejected(r) == [(2, (1, "LIMIT", 100.0, 3.993)), (2, (1, "LIMIT", 110.0, 3.63))]
    assert moves(bot) == [(0, "ACTIVE", "user_start"), (2, "PAUSED", "insufficient_funds")]
    assert [(bar, due) for bar, due, _ in armed] == [
        (2, 0.0),
        (2, 15.0),
        (2, 30.0),
        (2, 60.0),
        (2, 120.0),
        (2, 300.0),
    ]
    assert len({tag for _, _, tag in armed}) == 6  # one timer per poll
    m = r.metrics
    assert m["notifications"] == ["INSUFFICIENT_FUNDS"]
    assert m["funds_poll_warnings"] == 1  # bar 7 = the 300 s poll: no quote, stays PAUSED
    assert m["bot_state"] == "PAUSED"


@pytest.mark.parametrize(
    ("gap_bar", "resume_bar"),
    # polls at 0/15/30 s (bar 4), 60 s (bar 5), 120 s (bar 6), 300 s (bar 9): none at 180/240 s
    [(5, 5), (6, 6), (7, 9), (9, 9)],
)
def test_funds_back_at_a_poll_resume_and_replace_the_refused_buy(
    gap_bar: int, resume_bar: int
) -> None:
    bot, r = run_base([TOP] * (gap_bar - 5) + [GAP] * 4)
    assert rejected(r) == [(4, REFUSED_BUY)]
    assert moves(bot)[3:] == [PAUSE, (resume_bar, "ACTIVE", "funds_available")]
    # nothing goes out while paused; at the resume the held-back orders go out
    assert all(placed_at(r, bar) == [] for bar in range(5, resume_bar))
    assert placed_at(r, resume_bar) == replaced_orders(Q)
    assert r.metrics["funds_poll_warnings"] == 0
    # (105 is below the lowest level, 110, since the shift: out of range as well)
    assert r.metrics["notifications"] == ["INSUFFICIENT_FUNDS", "SYSTEM_ALERT_OUT_OF_RANGE"]


def test_all_polls_failing_stay_paused_until_a_user_resume() -> None:
    bot, r = run_base([TOP] * 4)  # to bar 8: the 300 s poll (bar 9) has not come yet
    assert r.metrics["bot_state"] == "PAUSED" and r.metrics["funds_poll_warnings"] == 0
    # Every poll fails at 161.1; the quote is back at bar 10, but no poll is left to see it.
    bot, r = run_base([TOP] * 5 + [GAP] * 4, commands={12: "RESUME"})
    assert moves(bot)[3:] == [PAUSE, (12, "ACTIVE", "user_resume")]
    assert r.metrics["funds_poll_warnings"] == 1
    assert all(placed_at(r, bar) == [] for bar in range(5, 12))
    assert placed_at(r, 12) == replaced_orders(Q)
    assert r.metrics["bot_state"] == "ACTIVE"


def test_added_funds_end_a_funds_pause_and_resize_the_held_back_orders() -> None:
    bot, r = run_base([TOP] * 5 + [GAP] * 4, add_funds={12: 10.416406})  # +2 %
    assert moves(bot)[3:] == [PAUSE, (12, "ACTIVE", "funds_available")]
    assert r.metrics["funds_poll_warnings"] == 1
    q = 1.1741  # floor_lot(1.1511...·1.02)
    # the three sells need 0.023 more base each (bought at market), the refused buy goes out
    assert placed_at(r, 12) == [(1, "LIMIT", 146.41, q), (1, "MARKET", None, 0.069)]
    sells = [(-1, "LIMIT", price, q) for price in (121.0, 133.1, 146.41, 161.05)]
    assert placed_at(r, 13) == sorted(sells)  # the top buy filled at 105 and sells one up
    m = r.metrics
    assert m["investment"] == pytest.approx(531.236706, abs=1e-9)
    assert m["base_per_grid"] == pytest.approx(
        520.8203 / (1.001 * (100 + 110) + 1.001 * 121 * 2) * 1.02, rel=1e-12
    )
    assert m["add_funds_count"] == 1 and m["bot_state"] == "ACTIVE"


def test_a_refused_market_top_up_is_resent_on_resume() -> None:
    # ×6 at bar 2 with 1000 of cash: the top-up (10.5 base) and both buys are refused.
    bot = Grid(**G1_CONFIG, pump_protection=False, add_funds={2: 2604.1015}, commands={9: "RESUME"})
    r = backtest(bot, make_bars([FLAT] * 11), instrument=X, cash=1000, close_at_end=False)
    refused: list[Order] = [
        (1, "MARKET", None, 10.5),
        (1, "LIMIT", 100.0, 7.986),
        (1, "LIMIT", 110.0, 7.26),
    ]
    assert rejected(r) == [(2, o) for o in refused] + [(9, o) for o in refused]
    # RESUME re-sends all three; still short, the bot pauses again (a new episode, new polls)
    assert moves(bot) == [
        (0, "ACTIVE", "user_start"),
        (2, "PAUSED", "insufficient_funds"),
        (9, "ACTIVE", "user_resume"),
        (9, "PAUSED", "insufficient_funds"),
    ]


def test_trailing_down_cut_short_for_funds_never_pauses() -> None:
    # The extension (1.4641 at market) is sized at 90 with about 135 of outside quote; the next
    # open is 95, where the account pays for 1.4196 only and the rest is cancelled for funds.
    bot = Grid(**G1_CONFIG, trailing_down=True, pump_protection=False)
    rows = [FLAT, FLAT, (121, 121, 108, 108), (108, 108, 98, 98), (98, 98, 90, 90)]
    r = backtest(
        bot, make_bars([*rows, (95, 95, 95, 95), (95, 95, 95, 95)]), instrument=X, cash=655.8203
    )
    o = r.orders
    cut = o[o.type == "MARKET"].iloc[-1]
    assert (cut.placed_bar, cut.qty, cut.filled) == (4, 1.4641, 1.4196)
    assert cut.reason == "INSUFFICIENT_FUNDS"
    assert "PAUSED" not in [to for _, to, _ in moves(bot)]
    assert placed_at(r, 5) == [(-1, "LIMIT", 100.0, 1.4196)]  # what was bought sells one up
    m = r.metrics
    assert m["notifications"] == ["TRAILING_DOWN_SHORT"]
    assert m["trailing_down_count"] == 1
    assert m["investment_added"] == pytest.approx(1.4196 * 95 * 1.001, abs=1e-9)
    assert m["bot_state"] == "ACTIVE"


def test_funds_case_compiled_and_python_paths_agree() -> None:
    runs = [run_base([TOP] * 2 + [GAP] * 4, mode=mode) for mode in ("compiled", "python")]
    (bot_a, a), (bot_b, b) = runs
    pd.testing.assert_frame_equal(a.orders, b.orders)
    pd.testing.assert_frame_equal(a.fills, b.fills)
    np.testing.assert_array_equal(bot_a.state, bot_b.state)
    assert moves(bot_a)[3:] == [PAUSE, (9, "ACTIVE", "funds_available")]


# ------------------------------------------------------------------ one episode after another

# Episode 1 (bar 4) resumes at its 60 s poll (bar 5, the gap); its 120 s and 300 s polls (bars 6
# and 9) are left over. Adding 90.5 at bar 7 (Q' = 1.3511) cancels the four sells for a top-up of
# 4 × 0.2 base, which the 79.45 of free quote does not cover at 105: episode 2 from bar 7, polls
# at bars 8 (0 to 60 s), 9 (120 s) and 12 (300 s). Nothing fills while it waits.
TWO_EPISODES = [GAP] * 8  # bars 5 to 12
TOP_UP: Order = (1, "MARKET", None, 0.8)
TWO_PAUSES = [
    PAUSE,
    (5, "ACTIVE", "funds_available"),
    (7, "PAUSED", "insufficient_funds"),
]


def run_two_episodes(bars: int, mode: str = "compiled") -> tuple[Grid, BacktestResult]:
    return run_base(TWO_EPISODES[: bars - 5], mode=mode, add_funds={7: 90.5})


def test_a_poll_left_over_from_an_earlier_episode_does_not_end_the_next() -> None:
    bot, r = run_two_episodes(12)  # to bar 11: episode 1's 300 s poll (bar 9) has come
    assert moves(bot)[3:] == TWO_PAUSES
    assert rejected(r) == [(4, REFUSED_BUY), (7, TOP_UP)]
    assert all(placed_at(r, bar) == [] for bar in range(8, 12))
    assert r.metrics["funds_poll_warnings"] == 0  # episode 2 still polls
    assert r.metrics["bot_state"] == "PAUSED"
    bot, r = run_two_episodes(13)  # to bar 12: its own 300 s poll fails
    assert moves(bot)[3:] == TWO_PAUSES
    assert r.metrics["funds_poll_warnings"] == 1
    assert r.metrics["bot_state"] == "PAUSED"


def test_compiled_and_python_paths_agree_on_two_funds_episodes() -> None:
    (bot_a, a), (bot_b, b) = (run_two_episodes(13, mode=mode) for mode in ("compiled", "python"))
    pd.testing.assert_frame_equal(a.orders, b.orders)
    pd.testing.assert_frame_equal(a.fills, b.fills)
    np.testing.assert_array_equal(bot_a.state, bot_b.state)
    assert bot_a.transitions() == bot_b.transitions()
    assert moves(bot_a)[3:] == TWO_PAUSES


# ------------------------------------------------------------------ polls without room to arm


def run_with_rows_at_refusal(
    rows: int, tail: list[tuple[float, float, float, float]], **fields: Any
) -> tuple[Grid, BacktestResult, list[tuple[int, float, float]]]:
    """run_base with only ``rows`` action rows for the kernel when an order is refused for funds;
    also (bar, due − event time in s, tag) of every timer armed."""
    armed: list[tuple[int, float, float]] = []

    def spy(params, state, event, actions):  # type: ignore[no-untyped-def]
        refusal = event[K.E_TYPE] == K.EV_CANCEL and event[K.E_CODE] == K.R_INSUFFICIENT_FUNDS
        n = grid_on_event_nb(params, state, event, actions[:rows] if refusal else actions)
        for row in actions[:n]:
            if row[K.A_KIND] == K.A_SET_TIMER:
                due_s = (row[K.A_ID] - event[K.E_TIME]) / 1000.0
                armed.append((int(event[K.E_BAR]), float(due_s), float(row[K.A_TAG])))
        return n

    class SpyGrid(Grid):
        kernel = staticmethod(spy)  # type: ignore[assignment]

    bot = SpyGrid(**G1_CONFIG, order_size_currency="BASE", pump_protection=False, **fields)
    bars = make_bars(RISE + tail)
    r = backtest(bot, bars, instrument=X, cash=520.8203, mode="python", close_at_end=False)
    return bot, r, armed


def test_polls_without_room_at_the_refusal_are_armed_by_the_first_poll() -> None:
    # Room for polls 0 and 1 at the refusal (bar 4); poll 0, due at once, arms 2 to 5 on the
    # same schedule, and the quote back at bar 7 is seen by the 300 s poll (bar 9) as before.
    bot, r, armed = run_with_rows_at_refusal(2, [TOP, TOP] + [GAP] * 3)
    assert armed == [
        (4, 0.0, 30.0),
        (4, 15.0, 31.0),
        (4, 30.0, 32.0),
        (4, 60.0, 33.0),
        (4, 120.0, 34.0),
        (4, 300.0, 35.0),
    ]
    assert moves(bot)[3:] == [PAUSE, (9, "ACTIVE", "funds_available")]
    assert placed_at(r, 9) == replaced_orders(Q)
    assert r.metrics["funds_poll_warnings"] == 0


def test_no_room_for_any_poll_pauses_with_the_warning_at_once() -> None:
    # Nothing could poll: the quote back at bar 5 goes unseen until a user RESUME (bar 7).
    bot, r, armed = run_with_rows_at_refusal(0, [GAP] * 4, commands={7: "RESUME"})
    assert armed == []
    assert moves(bot)[3:] == [PAUSE, (7, "ACTIVE", "user_resume")]
    assert all(placed_at(r, bar) == [] for bar in range(5, 7))
    assert placed_at(r, 7) == replaced_orders(Q)
    assert r.metrics["funds_poll_warnings"] == 1
