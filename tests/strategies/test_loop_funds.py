"""Loop on the shared insufficient-funds rule (STRATEGIES.md §4): each episode polls on tags of
its own, and a poll counts the base the venue last reported (a timer event carries none).

The loop is L1 (E=100, d=1%, n=10, I=1001, S=100, 90…110) on an account of 980: the five buys
(99, 98.01, 97.03, 96.06, 95.10) reserve 500.49 of it, so the market buy of 5 X for the sells
(500.5 at 100; 479.51 free) is refused at start. Bars are one minute apart: a refusal at bar t
arms polls that run at bar t (0, 15, 30 s), t+1 (60 s), t+2 (120 s) and t+5 (300 s).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from conftest import make_bars

from simulator import backtest
from simulator.result import BacktestResult
from strategies.loop import Loop
from tradetower.domain.instrument import Instrument

X = Instrument(symbol="X", tick=0.01, lot=0.0001, maker_fee=0.001, taker_fee=0.001)
Row = tuple[float, float, float, float]
CASH = 980.0
WARNING = "loop: still paused for funds after the last balance poll"


def flat(price: float) -> Row:
    return (price, price, price, price)


def l1_bot(**extra: object) -> Loop:
    return Loop(
        investment=1001,
        low_price=90,
        high_price=110,
        order_distance=1,
        order_count=10,
        **extra,  # type: ignore[arg-type]
    )


def run(bot: Loop, rows: list[Row], mode: str = "compiled") -> BacktestResult:
    return backtest(
        bot,
        make_bars(rows),
        instrument=X,
        cash=CASH,
        symbol="X",
        mode=mode,  # type: ignore[arg-type]
        close_at_end=False,
    )


def moves(bot: Loop) -> list[tuple[int, str]]:
    return [(t["bar"], t["trigger"]) for t in bot.transitions()]


def placed(r: BacktestResult, bar: int) -> list[tuple[int, str, float | None, float]]:
    """(side, type, price or None for a market order, qty) placed while bar ``bar`` ran."""
    o = r.orders[r.orders["placed_bar"] == bar]
    return [
        (int(s), t, None if p != p else float(p), float(q))
        for s, t, p, q in zip(o["side"], o["type"], o["price"], o["qty"], strict=True)
    ]


def warned(bot: Loop, caplog: pytest.LogCaptureFixture) -> bool:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="strategies.loop"):
        bot.metrics()
    return WARNING in caplog.messages


# Bar 2 falls to 95: the five buys fill while paused (5.1535 X), and each owes its sell of what
# it bought. At the last price seen (95.10) the market buy needs 5 · 95.1 · 1.001 = 475.98 of
# the 479.51 still free, and the base just bought covers the owed sells: the 120 s poll at bar 2
# resumes and re-sends them all.
DROP = [flat(100), flat(100), (100, 100, 95, 95)] + [flat(95)] * 4
BOUGHT = [1.0101, 1.0203, 1.0306, 1.0410, 1.0515]


def test_a_poll_counts_the_base_the_venue_last_reported(caplog: pytest.LogCaptureFixture) -> None:
    bot = l1_bot()
    r = run(bot, DROP)
    assert moves(bot) == [(0, "user_start"), (0, "insufficient_funds"), (2, "funds_available")]
    again = placed(r, 2)
    assert again[0] == (1, "MARKET", None, 5.0)
    sells = again[1:]
    assert [s[:2] for s in sells] == [(-1, "LIMIT")] * 5
    assert sorted(s[3] for s in sells) == BOUGHT
    m = r.metrics
    assert m["bot_state"] == "ACTIVE" and m["funds_pauses"] == 1
    assert not warned(bot, caplog)


# The market buy is refused at bar 0 (episode 1: polls at bars 0, 1, 2 and 5). A user RESUME at
# bar 1 re-sends it, refused again: episode 2 polls at bars 1, 2, 3 and 6. Episode 1's 300 s
# poll still fires at bar 5.
def test_a_poll_left_over_from_an_earlier_episode_does_not_end_the_next(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot = l1_bot(commands={1: "RESUME"})
    r = run(bot, [flat(100)] * 6)  # to bar 5
    assert moves(bot) == [
        (0, "user_start"),
        (0, "insufficient_funds"),
        (1, "user_resume"),
        (1, "insufficient_funds"),
    ]
    assert (r.orders["reason"] == "INSUFFICIENT_FUNDS").sum() == 2
    assert r.metrics["funds_pauses"] == 2
    assert not warned(bot, caplog)  # episode 2 still polls
    bot = l1_bot(commands={1: "RESUME"})
    run(bot, [flat(100)] * 7)  # to bar 6: its own 300 s poll fails
    assert warned(bot, caplog)
    assert bot.lifecycle_state.value == "PAUSED"


def test_compiled_and_python_paths_agree_on_a_funds_case() -> None:
    # DROP with a user RESUME at bar 1: the market buy is refused again (episode 2), whose 60 s
    # poll at bar 2 resumes once the buys have filled; episode 1's 120 s poll there is ignored.
    b1, b2 = l1_bot(commands={1: "RESUME"}), l1_bot(commands={1: "RESUME"})
    r1 = run(b1, DROP, mode="compiled")
    r2 = run(b2, DROP, mode="python")
    assert moves(b1) == [
        (0, "user_start"),
        (0, "insufficient_funds"),
        (1, "user_resume"),
        (1, "insufficient_funds"),
        (2, "funds_available"),
    ]
    assert placed(r1, 2)[0] == (1, "MARKET", None, 5.0)
    pd.testing.assert_frame_equal(r1.orders, r2.orders)
    pd.testing.assert_frame_equal(r1.fills, r2.fills)
    assert b1.transitions() == b2.transitions()
    np.testing.assert_array_equal(b1.state, b2.state)
