"""BTD on the shared insufficient-funds rule (STRATEGIES.md §4): each episode polls on tags of
its own, and a poll counts the base the venue last reported (a timer event carries none).

The grid is B1 (4 X, 100…146.41, N=5, trailing off): at start it sells 2 X at 121 for the buy
cells and rests SELL 1@133.10 and 1@146.41. Bars are one minute apart: a refusal at bar t arms
polls that run at bar t (0, 15, 30 s), t+1 (60 s), t+2 (120 s) and t+5 (300 s).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from conftest import make_bars

from simulator import backtest
from simulator.result import BacktestResult
from strategies.btd import Btd
from tradetower.domain.instrument import Instrument

X = Instrument(symbol="X", tick=0.01, lot=0.0001, maker_fee=0.001, taker_fee=0.001)
Row = tuple[float, float, float, float]
WARNING = "btd: still paused for funds after the last balance poll"


def flat(price: float) -> Row:
    return (price, price, price, price)


def b1_bot(**extra: object) -> Btd:
    return Btd(investment=4, low_price=100, high_price=146.41, grid_levels=5, **extra)  # type: ignore[arg-type]


def run(bot: Btd, rows: list[Row], holdings: float, mode: str = "compiled") -> BacktestResult:
    return backtest(
        bot,
        make_bars(rows),
        instrument=X,
        cash=0.0,
        holdings={"X": holdings},
        symbol="X",
        mode=mode,  # type: ignore[arg-type]
        close_at_end=False,
    )


def moves(bot: Btd) -> list[tuple[int, str]]:
    return [(t["bar"], t["trigger"]) for t in bot.transitions()]


def refused(r: BacktestResult) -> list[tuple[int, int, float | None, float]]:
    """(bar, side, price or None for a market order, qty) of the orders refused for funds."""
    o = r.orders[r.orders["reason"] == "INSUFFICIENT_FUNDS"]
    return [
        (int(b), int(s), None if p != p else float(p), float(q))
        for b, s, p, q in zip(o["done_bar"], o["side"], o["price"], o["qty"], strict=True)
    ]


def placed(r: BacktestResult, bar: int) -> list[list[float]]:
    o = r.orders[r.orders["placed_bar"] == bar]
    return o[["side", "price", "qty"]].values.tolist()


def warned(bot: Btd, caplog: pytest.LogCaptureFixture) -> bool:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="strategies.btd"):
        bot.metrics()
    return WARNING in caplog.messages


# Add funds of 0.4 X at bar 2 that the account lacks (it holds only 0.2 X beyond B): Q becomes
# 1.1, the sells re-place at 1.1 (the spare 0.2 covers them), the buy cells' extra sale (0.2) is
# refused, so the buys re-place unchanged: 1.2075@100 and 1.0978@110. Bar 3 dips to 110: the
# counter-sell 1.1@121 finds only the 1.0978 just bought and is refused (PAUSED). Bar 5 dips to
# 100 while paused: the buy there fills (1.2075 X), so the free base, 1.0978 + 1.2075 = 2.3053,
# covers both owed sells (2 × 1.1): the 120 s poll at bar 5 resumes.
DIPS = [flat(121)] * 3 + [(121, 121, 110, 110), flat(110), (110, 110, 100, 100)] + [flat(100)] * 4


def dips_bot(**extra: object) -> Btd:
    return b1_bot(trailing=False, add_funds={2: 0.4}, **extra)


def test_a_poll_counts_the_base_the_venue_last_reported(caplog: pytest.LogCaptureFixture) -> None:
    bot = dips_bot()
    r = run(bot, DIPS, holdings=4.2)
    assert refused(r) == [(2, -1, None, 0.2), (3, -1, 121.0, 1.1)]
    assert moves(bot) == [(0, "user_start"), (3, "insufficient_funds"), (5, "funds_available")]
    assert placed(r, 5) == [[-1, 110.0, 1.1], [-1, 121.0, 1.1]]
    m = r.metrics
    assert m["bot_state"] == "ACTIVE" and m["funds_pauses"] == 1
    assert not warned(bot, caplog)


# Only 1 of the 4 X is there: the sell @146.41 and the 2 X sale are refused at bar 0 (episode 1,
# polls at bars 0, 1, 2 and 5). A user RESUME at bar 1 re-sends both, refused again: episode 2
# polls at bars 1, 2, 3 and 6. Episode 1's 300 s poll still fires at bar 5.
STARVED = 1.0


def test_a_poll_left_over_from_an_earlier_episode_does_not_end_the_next(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot = b1_bot(commands={1: "RESUME"})
    r = run(bot, [flat(121)] * 6, holdings=STARVED)  # to bar 5
    assert moves(bot) == [
        (0, "user_start"),
        (0, "insufficient_funds"),
        (1, "user_resume"),
        (1, "insufficient_funds"),
    ]
    assert len(refused(r)) == 4
    assert r.metrics["funds_pauses"] == 2
    assert not warned(bot, caplog)  # episode 2 still polls
    bot = b1_bot(commands={1: "RESUME"})
    run(bot, [flat(121)] * 7, holdings=STARVED)  # to bar 6: its own 300 s poll fails
    assert warned(bot, caplog)
    assert bot.lifecycle_state.value == "PAUSED"


def test_compiled_and_python_paths_agree_on_a_funds_case() -> None:
    # DIPS with a user RESUME at bar 4: the owed sell is refused again (episode 2), and episode
    # 2's 60 s poll at bar 5 resumes while episode 1's 120 s poll there is ignored.
    b1, b2 = dips_bot(commands={4: "RESUME"}), dips_bot(commands={4: "RESUME"})
    r1 = run(b1, DIPS, holdings=4.2, mode="compiled")
    r2 = run(b2, DIPS, holdings=4.2, mode="python")
    assert moves(b1) == [
        (0, "user_start"),
        (3, "insufficient_funds"),
        (4, "user_resume"),
        (4, "insufficient_funds"),
        (5, "funds_available"),
    ]
    assert placed(r1, 5) == [[-1, 110.0, 1.1], [-1, 121.0, 1.1]]
    pd.testing.assert_frame_equal(r1.orders, r2.orders)
    pd.testing.assert_frame_equal(r1.fills, r2.fills)
    assert b1.transitions() == b2.transitions()
    np.testing.assert_array_equal(b1.state, b2.state)
