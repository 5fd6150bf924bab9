"""DCA on the shared insufficient-funds rule (STRATEGIES.md §4, §5 item 11).

The bot: a base order of 400 @100 (4.0), averaging orders of 200 at 98/96/94 with one resting at
a time (active_orders_limit 1), the take-profit 4.0 @103. With 500 of cash the base fills on
bar 1 and leaves 99.6: the averaging buy @98 (2.0408, 200.198 with the taker fee) is refused and
the bot pauses at bar 1 (t = 60 s). Bars are one minute apart, so the polls at 0, 15 and 30 s
fall in bar 1, 60 s in bar 2, 120 s in bar 3 and 300 s in bar 6. Funds come back when the
take-profit sells 1.0 @103 on a bar whose volume lets only 1.0 trade: 99.6 + 102.897 = 202.497.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import make_bars

import strategies.dca as D
from simulator import backtest
from simulator.checkpoint import backtest_until
from simulator.engine import Mode
from simulator.result import BacktestResult
from strategies.dca import Dca
from tradetower import kernel_abi as K
from tradetower.bots import codes as C
from tradetower.domain.instrument import Instrument

X = Instrument(symbol="X/USD", tick=0.01, lot=0.0001, maker_fee=0.001, taker_fee=0.001)
FLAT = (100.0, 100.0, 100.0, 100.0)
UP = (100.0, 103.5, 100.0, 100.0)  # the take-profit @103 trades (1.0 of it: the bar's volume)
DOWN = (100.0, 100.0, 96.9, 100.0)  # spot SHORT: its take-profit buy @97 trades 1.0
CASH = 500.0
N_BARS = 10
POLL_OFFSETS_MS = [0.0, 15_000.0, 30_000.0, 60_000.0, 120_000.0, 300_000.0]
POLL_TAGS = [D.TAG_POLL + j for j in range(6)]
T2 = 1_704_067_320_000.0  # bar 2 (2024-01-01 00:02 UTC)
AV98 = 3010.0  # the tag of the resting averaging order @98 after bar 1
TP = 2001.0  # the take-profit's tag


def make_bot(**changes: Any) -> Dca:
    return Dca(
        base_order_amount=400,
        averaging_orders_amount=600,
        averaging_orders_quantity=3,
        averaging_orders_step=2,
        take_profit_pct=3,
        active_orders_limit=1,
        **changes,
    )


def bars_with(move: tuple[float, float, float, float], at: int) -> pd.DataFrame:
    """Flat bars with ``move`` at bar ``at``, whose volume lets 1.0 trade (participation 0.1)."""
    rows = [FLAT] * N_BARS
    rows[at] = move
    bars: pd.DataFrame = make_bars(rows)
    bars.loc[bars.index[at], "volume"] = 10.0
    return bars


def run(bot: Dca, bars: pd.DataFrame, mode: Mode = "auto", **kw: Any) -> BacktestResult:
    kw.setdefault("cash", CASH)
    return backtest(bot, bars, instrument=X, participation=0.1, close_at_end=False, mode=mode, **kw)


def lifecycle(bot: Dca) -> str:
    return bot.lifecycle_state.value


def transitions(bot: Dca) -> list[tuple[int, str]]:
    return [(t["bar"], t["trigger"]) for t in bot.transitions()]


def averaging_orders(r: BacktestResult) -> list[tuple[int, float, float, str]]:
    """(placed bar, price, qty, status) of the averaging orders."""
    o = r.orders[r.orders["tag"] % 1000 >= D.SL_AV0]
    return list(zip(o["placed_bar"], o["price"], o["qty"], o["status"], strict=True))


# ------------------------------------------------------------------------- kernel level


def active_bot() -> Dca:
    """The bot after bar 1: ACTIVE, the base filled, the averaging buy @98 resting."""
    bot = make_bot()
    backtest_until(bot, make_bars([FLAT] * 3), 2, instrument=X, cash=10_000)
    assert lifecycle(bot) == "ACTIVE"
    assert bot.state[D.av_i(D.AV_TAG, 0)] == AV98
    return bot


def event(kind: int, time: float, tag: float = 0.0, code: float = 0.0) -> np.ndarray:
    ev = np.zeros(K.N_EVENT)
    ev[K.E_TYPE] = kind
    ev[K.E_BAR] = 2
    ev[K.E_TIME] = time
    ev[K.E_TAG] = tag
    ev[K.E_CODE] = code
    if kind != K.EV_TIMER:  # a timer carries no instrument, hence no price nor position
        ev[K.E_PRICE] = 100.0
        ev[K.E_MARK] = 100.0
        ev[K.E_POS_QTY] = 4.0
    ev[K.E_FREE] = 99.6
    return ev


def refusal(time: float, tag: float) -> np.ndarray:
    return event(K.EV_CANCEL, time, tag, float(K.R_INSUFFICIENT_FUNDS))


def poll(j: int, since: float, free: float) -> np.ndarray:
    ev = event(K.EV_TIMER, since + POLL_OFFSETS_MS[j], POLL_TAGS[j])
    ev[K.E_FREE] = free
    return ev


def call(bot: Dca, ev: np.ndarray, rows: int = 64) -> np.ndarray:
    """One kernel call with room for ``rows`` actions; the actions it returned."""
    actions = np.zeros((rows, K.N_ACTION))
    n = Dca.kernel(bot.params, bot.state, ev, actions)
    return actions[:n]


def timers(actions: np.ndarray, since: float) -> list[tuple[float, float]]:
    """(due − since, tag) of the timers among ``actions``."""
    rows = actions[actions[:, K.A_KIND] == K.A_SET_TIMER]
    return [(float(a[K.A_ID] - since), float(a[K.A_TAG])) for a in rows]


def placed(actions: np.ndarray) -> list[tuple[float, int, float, float]]:
    """(side, type, price, qty) of the orders among ``actions``."""
    rows = actions[actions[:, K.A_KIND] == K.A_PLACE]
    return [(a[K.A_SIDE], int(a[K.A_TYPE]), a[K.A_PRICE], a[K.A_QTY]) for a in rows]


def test_a_funds_refusal_pauses_once_per_episode_and_arms_the_six_polls() -> None:
    bot = active_bot()
    acts = call(bot, refusal(T2, AV98))
    assert timers(acts, T2) == list(zip(POLL_OFFSETS_MS, POLL_TAGS, strict=True))
    assert len(acts) == 6
    # The take-profit refused in the same episode: no second pause, no more polls.
    assert len(call(bot, refusal(T2 + 1_000.0, TP))) == 0
    assert transitions(bot) == [(0, "user_start"), (2, "insufficient_funds")]
    assert bot.funds_status() == {"pauses": 1, "polling": True, "warning": False}
    assert bot.averaging_orders()[0]["status"] == "HELD"


def test_failed_polls_give_up_and_only_a_user_resume_places_the_order_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot = active_bot()
    call(bot, refusal(T2, AV98))
    warned = []
    for j in range(6):
        assert len(call(bot, poll(j, T2, free=99.6))) == 0
        warned.append(bot.funds_status()["warning"])
    assert warned == [False] * 5 + [True]  # the WARNING comes with the failed 300 s poll
    assert lifecycle(bot) == "PAUSED"
    assert bot.funds_status() == {"pauses": 1, "polling": False, "warning": True}
    with caplog.at_level(logging.WARNING, logger="strategies.dca"):
        bot.metrics()
    assert caplog.messages == [
        "dca: no funds at the last balance poll; only a resume or add funds resumes it"
    ]
    # Funds are there now, but a poll after the last one no longer counts.
    assert len(call(bot, poll(5, T2, free=10_000.0))) == 0
    assert lifecycle(bot) == "PAUSED"
    resume = event(K.EV_SIGNAL, T2 + 400_000.0, code=float(C.CMD_RESUME))
    assert placed(call(bot, resume)) == [(1.0, K.LIMIT, 98.0, 2.0408)]
    assert transitions(bot)[-1] == (2, "user_resume")
    assert lifecycle(bot) == "ACTIVE"
    assert bot.funds_status() == {"pauses": 1, "polling": False, "warning": False}


def test_a_poll_with_the_funds_resumes_and_the_probe_places_the_order_again() -> None:
    bot = active_bot()
    call(bot, refusal(T2, AV98))
    # The buy needs 2.0408 × 98 × 1.001 = 200.198: 200.19 free is not enough, 200.20 is.
    assert len(call(bot, poll(3, T2, free=200.19))) == 0
    acts = call(bot, poll(4, T2, free=200.20))
    assert transitions(bot)[-1] == (2, "funds_available")
    assert lifecycle(bot) == "ACTIVE"
    # A timer carries no price: the order goes out at the next bar's open, through the probe.
    assert placed(acts) == []
    probe = acts[acts[:, K.A_KIND] == K.A_ARM_CROSS]
    assert probe[:, K.A_TAG].tolist() == [D.T_PROBE]
    t3 = T2 + 180_000.0
    fire = event(K.EV_TRIGGER, t3, tag=float(D.T_PROBE))
    assert placed(call(bot, fire)) == [(1.0, K.LIMIT, 98.0, 2.0408)]
    # Refused again at the resume: paused without new polls, with the WARNING.
    assert len(call(bot, refusal(t3, bot.state[D.av_i(D.AV_TAG, 0)]))) == 0
    assert transitions(bot)[-1] == (2, "insufficient_funds")
    assert bot.funds_status() == {"pauses": 2, "polling": False, "warning": True}


def test_each_episode_polls_on_tags_of_its_own_and_a_leftover_poll_is_ignored() -> None:
    bot = active_bot()
    call(bot, refusal(T2, AV98))  # episode 1: polls on TAG_POLL + 0…5
    resume = event(K.EV_SIGNAL, T2 + 20_000.0, code=float(C.CMD_RESUME))
    assert placed(call(bot, resume)) == [(1.0, K.LIMIT, 98.0, 2.0408)]
    t = T2 + 30_000.0
    acts = call(bot, refusal(t, bot.state[D.av_i(D.AV_TAG, 0)]))  # episode 2
    assert timers(acts, t) == [(s, D.TAG_POLL + 6 + j) for j, s in enumerate(POLL_OFFSETS_MS)]
    # Episode 1's 300 s poll still fires; with no funds it would have been the last poll.
    assert len(call(bot, poll(5, T2, free=99.6))) == 0
    assert bot.funds_status() == {"pauses": 2, "polling": True, "warning": False}
    # Nor does one of its polls resume episode 2 when the funds are there.
    assert len(call(bot, poll(4, T2, free=10_000.0))) == 0
    assert lifecycle(bot) == "PAUSED"


def test_polls_with_no_action_row_free_at_the_pause_are_armed_by_the_polls_that_wait() -> None:
    bot = active_bot()
    acts = call(bot, refusal(T2, AV98), rows=2)  # room for the 0 and 15 s polls only
    assert timers(acts, T2) == [(0.0, D.TAG_POLL), (15_000.0, D.TAG_POLL + 1)]
    acts = call(bot, poll(0, T2, free=99.6), rows=2)
    assert timers(acts, T2) == [(30_000.0, D.TAG_POLL + 2), (60_000.0, D.TAG_POLL + 3)]
    acts = call(bot, poll(1, T2, free=99.6))
    assert timers(acts, T2) == [(120_000.0, D.TAG_POLL + 4), (300_000.0, D.TAG_POLL + 5)]
    assert len(call(bot, poll(2, T2, free=99.6))) == 0  # none owed any more
    assert bot.funds_status() == {"pauses": 1, "polling": True, "warning": False}


# ------------------------------------------------------------------------- backtests


@pytest.mark.parametrize(
    ("funds_back", "resumed", "replaced"),
    [
        (2, 2, 3),  # the 60 s poll
        (3, 3, 4),  # the 120 s poll
        (4, 6, 7),  # the 300 s poll
        (6, 6, 7),
    ],
)
def test_funds_back_at_a_poll_resume_and_the_refused_order_goes_out_again(
    funds_back: int, resumed: int, replaced: int
) -> None:
    bot = make_bot()
    r = run(bot, bars_with(UP, funds_back))
    assert transitions(bot) == [
        (0, "user_start"),
        (1, "insufficient_funds"),
        (resumed, "funds_available"),
        (N_BARS - 1, "user_stop"),
        (N_BARS - 1, "done"),
    ]
    tp = r.fills[r.fills["side"] < 0]
    assert list(zip(tp["bar"], tp["qty"], tp["price"], strict=True)) == [(funds_back, 1.0, 103.0)]
    assert averaging_orders(r) == [
        (1, 98.0, 2.0408, "REJECTED"),
        (replaced, 98.0, 2.0408, "CANCELLED"),  # cancelled by the stop at the end of the data
    ]
    assert bot.funds_status() == {"pauses": 1, "polling": False, "warning": False}


@pytest.mark.parametrize(
    ("changes", "trigger", "qty"),
    [
        ({}, None, None),
        ({"commands": {8: C.CMD_RESUME}}, "user_resume", 2.0408),
        ({"add_funds": {8: 1.0}}, "funds_available", 2.0428),  # a_0 = 600.6/3 = 200.2
    ],
)
def test_funds_back_after_the_last_poll_wait_for_a_resume_or_add_funds(
    changes: dict[str, Any], trigger: str | None, qty: float | None
) -> None:
    bot = make_bot(**changes)
    r = run(bot, bars_with(UP, 7))  # the take-profit sells 1.0 after the 300 s poll (bar 6)
    trail = transitions(bot)
    assert trail[:2] == [(0, "user_start"), (1, "insufficient_funds")]
    rejected = (1, 98.0, 2.0408, "REJECTED")
    if trigger is None:
        assert trail[2:] == [(9, "user_stop"), (9, "done")]  # PAUSED until the end
        assert averaging_orders(r) == [rejected]
        assert bot.funds_status() == {"pauses": 1, "polling": False, "warning": True}
    else:
        assert trail[2] == (8, trigger)
        assert averaging_orders(r) == [rejected, (8, 98.0, qty, "CANCELLED")]
        assert bot.funds_status() == {"pauses": 1, "polling": False, "warning": False}


def test_spot_short_polls_the_base_its_last_fill_reported() -> None:
    # 5.0 of base: the base order sells 4.0, the averaging sell of 2.0 @102 is refused; the
    # take-profit buys 1.0 back @97 on bar 3, and the 120 s poll finds the 2.0 (a timer event
    # carries no position: the bot keeps the one its last event reported).
    bot = Dca(
        direction="SHORT",
        base_order_amount=4,
        averaging_orders_amount=4,
        averaging_orders_quantity=2,
        averaging_orders_step=2,
        take_profit_pct=3,
        active_orders_limit=1,
    )
    r = run(bot, bars_with(DOWN, 3), cash=0.0, holdings={"ASSET": 5.0})
    assert transitions(bot)[1:3] == [(1, "insufficient_funds"), (3, "funds_available")]
    assert averaging_orders(r) == [(1, 102.0, 2.0, "REJECTED"), (4, 102.0, 2.0, "CANCELLED")]


def test_funds_case_parity_of_the_compiled_and_python_paths() -> None:
    compiled_bot, python_bot = make_bot(), make_bot()
    compiled = run(compiled_bot, bars_with(UP, 4), mode="compiled")
    python = run(python_bot, bars_with(UP, 4), mode="python")
    assert (6, "funds_available") in transitions(compiled_bot)
    assert (compiled.orders["reason"] == "INSUFFICIENT_FUNDS").sum() == 1
    pd.testing.assert_frame_equal(compiled.orders, python.orders)
    pd.testing.assert_frame_equal(compiled.fills, python.fills)
    np.testing.assert_array_equal(compiled_bot.state, python_bot.state)


# The first episode (bar 1) resumes at its 60 s poll (bar 2, the take-profit sold 1.0 @103); the
# probe re-places the buy @98 at bar 3, and it fills at bar 4 (low 97.9). The next averaging buy
# (2.0833 @96, 200.2 with the fee) is refused there: episode 2 polls at bars 4, 4, 4, 5, 6 and 9.
# Episode 1's 300 s poll still fires at bar 6. Bar 8 sells 2.0 of the take-profit (5.0408
# @102.17), so episode 2's own 300 s poll at bar 9 finds 206.43 and resumes.
SECOND = [FLAT, FLAT, UP, FLAT, (100.0, 100.0, 97.9, 100.0), FLAT, FLAT, FLAT, UP, FLAT, FLAT, FLAT]


def second_episode_bars() -> pd.DataFrame:
    """SECOND, whose volume lets 1.0 trade at bar 2 and 2.0 at bar 8 (participation 0.1)."""
    bars: pd.DataFrame = make_bars(SECOND)
    bars.loc[bars.index[2], "volume"] = 10.0
    bars.loc[bars.index[8], "volume"] = 20.0
    return bars


def test_the_last_poll_of_an_earlier_episode_does_not_end_the_next() -> None:
    bot = make_bot()
    # Through bar 6, where episode 1's 300 s poll fires: episode 2 still polls, no WARNING.
    backtest_until(bot, second_episode_bars(), 7, instrument=X, cash=CASH, participation=0.1)
    assert transitions(bot) == [
        (0, "user_start"),
        (1, "insufficient_funds"),
        (2, "funds_available"),
        (4, "insufficient_funds"),
    ]
    assert bot.funds_status() == {"pauses": 2, "polling": True, "warning": False}
    bot = make_bot()
    r = run(bot, second_episode_bars())
    assert transitions(bot) == [
        (0, "user_start"),
        (1, "insufficient_funds"),
        (2, "funds_available"),
        (4, "insufficient_funds"),
        (9, "funds_available"),
        (11, "user_stop"),
        (11, "done"),
    ]
    assert averaging_orders(r) == [
        (1, 98.0, 2.0408, "REJECTED"),
        (3, 98.0, 2.0408, "FILLED"),
        (4, 96.0, 2.0833, "REJECTED"),
        (10, 96.0, 2.0833, "CANCELLED"),  # cancelled by the stop at the end of the data
    ]
    assert bot.funds_status() == {"pauses": 2, "polling": False, "warning": False}


def test_second_episode_parity_of_the_compiled_and_python_paths() -> None:
    compiled_bot, python_bot = make_bot(), make_bot()
    compiled = run(compiled_bot, second_episode_bars(), mode="compiled")
    python = run(python_bot, second_episode_bars(), mode="python")
    assert (9, "funds_available") in transitions(compiled_bot)
    assert compiled_bot.transitions() == python_bot.transitions()
    pd.testing.assert_frame_equal(compiled.orders, python.orders)
    pd.testing.assert_frame_equal(compiled.fills, python.fills)
    np.testing.assert_array_equal(compiled_bot.state, python_bot.state)
