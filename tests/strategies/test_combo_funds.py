"""Combo on the shared insufficient-funds rule (STRATEGIES.md §4, §5.11).

The account holds 50 of cash: the base (40 margin at 10x) fills, the DCA at 99 fills 0.617 of
its 3.0303 and the venue refuses the rest for funds. Bars are one minute apart, so the polls at
0, 15 and 30 s fall in the bar of the pause, 60 s in the next, 120 s two bars on, 300 s five on.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from conftest import make_bars
from test_combo import C_CFG, INST

import strategies.combo as combo
from simulator import backtest
from simulator.result import BacktestResult
from strategies.combo import Combo
from tradetower import kernel_abi as K
from tradetower.bots import codes as C

CFG = C_CFG  # the C1 configuration of test_combo
CASH = 50.0
START = [(100.0, 100.0, 100.0, 100.0), (100.0, 100.2, 99.8, 100.0)]  # the base fills @100
DIP = (100.0, 100.1, 98.9, 99.0)  # bar 2: the DCA @99 fills 0.617, the rest is refused
FLAT = (99.0, 99.0, 99.0, 99.0)
UP = (99.0, 102.0, 99.0, 102.0)  # two exits fill (100.87, 101.87): the margin they held is free
HOLD = (102.0, 102.0, 102.0, 102.0)
POLL_OFFSETS_MS = [0.0, 15_000.0, 30_000.0, 60_000.0, 120_000.0, 300_000.0]
REFUSED_REST = (99.0, 2.4133)  # 3.0303 − 0.617 @ 99, re-placed on resume
T0 = 1_704_067_380_000.0


def run(
    rows: list[tuple[float, float, float, float]],
    mode: str = "python",
    max_actions: int = 256,
    **changes: object,
) -> tuple[Combo, BacktestResult]:
    bot = Combo(**{**CFG, **changes})
    result = backtest(
        bot,
        make_bars(rows),
        instrument=INST,
        cash=CASH,
        mode=mode,
        close_at_end=False,
        max_actions=max_actions,
    )
    return bot, result


def transitions(bot: Combo) -> list[tuple[int, str]]:
    return [(t["bar"], t["trigger"]) for t in bot.transitions()]


def entries_placed(r: BacktestResult, bar: int) -> list[tuple[float, float]]:
    o = r.orders
    sel = o[(o.placed_bar == bar) & ~o.reduce_only]
    return sorted(zip(sel.price.round(8), sel.qty.round(8), strict=True))


def refused(r: BacktestResult) -> list[tuple[int, float, float, float]]:
    """(bar, price, qty, filled) of the orders the venue refused for funds."""
    o = r.orders[r.orders.reason == "INSUFFICIENT_FUNDS"]
    return list(zip(o.done_bar, o.price, o.qty, o.filled.round(8), strict=True))


# ------------------------------------------------------------------------- kernel level
def event(kind: int, time: float, tag: float = 0.0, code: float = 0.0) -> np.ndarray:
    ev = np.zeros(K.N_EVENT)
    ev[K.E_TYPE] = kind
    ev[K.E_BAR] = 2
    ev[K.E_TIME] = time
    ev[K.E_TAG] = tag
    ev[K.E_CODE] = code
    ev[K.E_EQUITY] = 0.0  # no free margin at any poll unless a test says so
    return ev


def call(bot: Combo, ev: np.ndarray, rows: int = 64) -> np.ndarray:
    """One kernel call with ``rows`` action rows; the actions it returned."""
    actions = np.zeros((rows, K.N_ACTION))
    n = combo.combo_on_event_nb(bot.params, bot.state, ev, actions)
    return actions[:n]


def refusal(time: float, dca_tag: float) -> np.ndarray:
    return event(K.EV_CANCEL, time, dca_tag, float(K.R_INSUFFICIENT_FUNDS))


def active_bot() -> Combo:
    """The bot after the base fill: ACTIVE, DCA orders 1001 @99 and 1002 @98 resting."""
    bot, r = run(START)
    assert sorted(r.orders.tag[~r.orders.reduce_only & (r.orders.type == "LIMIT")]) == [1001, 1002]
    return bot


def timers(actions: np.ndarray, since: float) -> list[tuple[float, float]]:
    """(due − since, tag) of the timers among ``actions``."""
    rows = actions[actions[:, K.A_KIND] == K.A_SET_TIMER]
    return [(a[K.A_ID] - since, a[K.A_TAG]) for a in rows]


def test_a_funds_refusal_pauses_once_per_episode_and_arms_the_six_polls() -> None:
    bot = active_bot()
    acts = call(bot, refusal(T0, 1001))
    assert timers(acts, T0) == list(
        zip(POLL_OFFSETS_MS, [100.0, 101, 102, 103, 104, 105], strict=True)
    )
    assert len(acts) == 6
    # the other DCA refused in the same episode: no second pause, no more polls
    assert len(call(bot, refusal(T0 + 1_000.0, 1002))) == 0
    assert transitions(bot) == [(0, "user_start"), (2, "insufficient_funds")]
    assert bot.metrics()["funds_pauses"] == 1
    assert [d["resting"] for d in bot.dca_orders()] == [False, False]


def test_a_failed_last_poll_gives_up_and_only_a_user_resume_replaces_the_orders(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot = active_bot()
    polls = timers(call(bot, refusal(T0, 1001)), T0)
    warned = []
    for offset, tag in polls:
        assert len(call(bot, event(K.EV_TIMER, T0 + offset, tag))) == 0
        warned.append(bot.state[combo.F_FUNDS_WARN])
    assert warned == [0.0] * 5 + [1.0]  # the WARNING comes with the failed 300 s poll
    assert bot.lifecycle_state.value == "PAUSED"
    with caplog.at_level(logging.WARNING, logger="strategies.combo"):
        bot.metrics()
    assert caplog.messages == ["combo: still paused for funds after the last balance poll"]
    # funds are there now, but a poll after the last one (or a stale one) no longer counts
    rich = event(K.EV_TIMER, T0 + 300_000.0, 105.0)
    rich[K.E_EQUITY] = 10_000.0
    assert len(call(bot, rich)) == 0
    assert bot.lifecycle_state.value == "PAUSED"

    acts = call(bot, event(K.EV_SIGNAL, T0 + 400_000.0, code=float(C.CMD_RESUME)))
    placed = acts[acts[:, K.A_KIND] == K.A_PLACE]
    assert placed[:, [K.A_PRICE, K.A_QTY]].tolist() == [[99.0, 3.0303]]  # 98 still rests
    assert transitions(bot)[-1] == (2, "user_resume")
    assert bot.state[combo.F_FUNDS_WARN] == 0.0
    # a later refusal is a new episode, polled on its own tags
    acts = call(bot, refusal(T0 + 500_000.0, placed[0, K.A_TAG]))
    assert timers(acts, T0 + 500_000.0) == list(
        zip(POLL_OFFSETS_MS, [106.0, 107, 108, 109, 110, 111], strict=True)
    )
    assert bot.metrics()["funds_pauses"] == 2


def test_refused_again_when_a_poll_just_resumed_pauses_without_new_polls() -> None:
    bot = active_bot()
    call(bot, refusal(T0, 1001))
    rich = event(K.EV_TIMER, T0 + 15_000.0, 101.0)
    rich[K.E_EQUITY] = 10_000.0
    acts = call(bot, rich)
    assert [a[K.A_KIND] for a in acts] == [K.A_PLACE]
    assert transitions(bot)[-1] == (2, "funds_available")
    assert len(call(bot, refusal(T0 + 15_000.0, acts[0, K.A_TAG]))) == 0
    assert transitions(bot)[-1] == (2, "insufficient_funds")
    assert bot.state[combo.F_FUNDS_WARN] == 1.0
    assert bot.metrics()["funds_pauses"] == 2


def test_polls_with_no_room_at_the_pause_are_armed_by_the_first_poll() -> None:
    bot = active_bot()
    acts = call(bot, refusal(T0, 1001), rows=3)  # room for three polls only
    assert timers(acts, T0) == [(0.0, 100.0), (15_000.0, 101.0), (30_000.0, 102.0)]
    acts = call(bot, event(K.EV_TIMER, T0, 100.0))  # poll 0 fails and arms the rest
    assert timers(acts, T0) == [(60_000.0, 103.0), (120_000.0, 104.0), (300_000.0, 105.0)]
    assert len(acts) == 3
    warned = []
    for offset, tag in [(15_000.0, 101.0), (30_000.0, 102.0), *timers(acts, T0)]:
        assert len(call(bot, event(K.EV_TIMER, T0 + offset, tag))) == 0
        warned.append(bot.state[combo.F_FUNDS_WARN])
    assert warned == [0.0] * 4 + [1.0]  # the owed 300 s poll gives up
    assert bot.lifecycle_state.value == "PAUSED"
    assert transitions(bot) == [(0, "user_start"), (2, "insufficient_funds")]


# ------------------------------------------------------------------------ backtest level
def test_funds_back_at_a_poll_resume_and_replace_the_refused_order() -> None:
    bot, r = run([*START, DIP, UP, HOLD])
    assert refused(r) == [(2, 99.0, 3.0303, 0.617)]
    assert transitions(bot) == [
        (0, "user_start"),
        (2, "insufficient_funds"),
        (3, "funds_available"),
    ]
    assert entries_placed(r, 3) == [REFUSED_REST]  # the 60 s poll, the bar the exits filled
    m = bot.metrics()
    assert m["bot_state"] == "ACTIVE"
    assert m["funds_pauses"] == 1
    assert m["position"] == pytest.approx(1.539, abs=1e-12)


def test_polls_keep_to_the_schedule() -> None:
    # funds are there from bar 5 on, but the next poll after 120 s (bar 4) is 300 s (bar 7)
    bot, r = run([*START, DIP, FLAT, FLAT, UP, HOLD, HOLD, HOLD])
    assert transitions(bot) == [
        (0, "user_start"),
        (2, "insufficient_funds"),
        (7, "funds_available"),
    ]
    assert entries_placed(r, 7) == [REFUSED_REST]
    assert [entries_placed(r, bar) for bar in range(2, 7)] == [[]] * 5


def test_all_polls_failing_stays_paused_until_a_user_resume() -> None:
    rows = [*START, DIP, *[FLAT] * 6, UP, HOLD, HOLD]  # the last poll fails at bar 7
    bot, r = run(rows)
    assert transitions(bot) == [(0, "user_start"), (2, "insufficient_funds")]
    assert bot.metrics()["bot_state"] == "PAUSED"  # funds came back at bar 9: no poll left
    assert bot.state[combo.F_FUNDS_WARN] == 1.0
    assert len(r.orders) == 9  # nothing re-placed

    bot, r = run(rows, commands={11: "RESUME"})
    assert transitions(bot)[-1] == (11, "user_resume")
    assert entries_placed(r, 11) == [REFUSED_REST]
    assert bot.metrics()["bot_state"] == "ACTIVE"
    assert bot.state[combo.F_FUNDS_WARN] == 0.0


def test_all_polls_failing_then_add_funds_resumes_with_the_rescaled_orders() -> None:
    bot, r = run([*START, DIP, *[FLAT] * 7], commands={9: "ADD_FUNDS"}, add_funds_amount=100)
    assert transitions(bot) == [
        (0, "user_start"),
        (2, "insufficient_funds"),
        (9, "funds_available"),
    ]
    # margin ×(100+100)/100: the refused rest 47.78 → 4.8266 @ 99; the resting 98 → 6.1224
    assert entries_placed(r, 9) == [(98.0, 6.1224), (99.0, 4.8266)]
    assert bot.metrics()["bot_state"] == "ACTIVE"


STALE_ROWS = [*START, DIP, *[FLAT] * 5, UP, HOLD]


def test_polls_left_from_an_earlier_episode_are_ignored() -> None:
    # episode 1 pauses at bar 2; RESUME at bar 3 re-places the rest, refused again at bar 4:
    # episode 2 polls at bars 4, 5, 6 and 9. Episode 1's 300 s poll (bar 7) must not end it.
    bot, r = run(STALE_ROWS, commands={3: "RESUME"})
    assert transitions(bot) == [
        (0, "user_start"),
        (2, "insufficient_funds"),
        (3, "user_resume"),
        (4, "insufficient_funds"),
        (9, "funds_available"),
    ]
    assert refused(r) == [(2, 99.0, 3.0303, 0.617), (4, *REFUSED_REST, 0.0)]
    assert entries_placed(r, 9) == [REFUSED_REST]
    assert bot.metrics()["funds_pauses"] == 2


def test_compiled_and_python_paths_agree_on_a_funds_case() -> None:
    runs = {
        mode: run(STALE_ROWS, mode=mode, commands={3: "RESUME"}) for mode in ("compiled", "python")
    }
    (b1, r1), (b2, r2) = runs["compiled"], runs["python"]
    pd.testing.assert_frame_equal(r1.orders, r2.orders)
    pd.testing.assert_frame_equal(r1.fills, r2.fills)
    np.testing.assert_array_equal(b1.state, b2.state)
    assert transitions(b1)[-1] == (9, "funds_available")
    assert len(r1.fills) == 4


# DIP2 (bar 4) falls to 97.9 after the poll at bar 3 resumed episode 1: the re-placed rest @99
# fills and the DCA @98 fills 1.0397 of 3.0612 before the venue refuses the rest (episode 2,
# polls at bars 4, 4, 4, 5, 6 and 9). Episode 1's 300 s poll still fires at bar 7.
DIP2 = (102.0, 102.0, 97.9, 97.9)
LOW = (97.9, 97.9, 97.9, 97.9)
RESUMED_THEN_REFUSED = [*START, DIP, UP, DIP2]


def test_a_leftover_poll_of_an_episode_a_poll_ended_does_not_end_the_next() -> None:
    bot, r = run([*RESUMED_THEN_REFUSED, *[LOW] * 4])  # to bar 8
    assert transitions(bot) == [
        (0, "user_start"),
        (2, "insufficient_funds"),
        (3, "funds_available"),
        (4, "insufficient_funds"),
    ]
    assert refused(r) == [(2, 99.0, 3.0303, 0.617), (4, 98.0, 3.0612, 1.0397)]
    assert bot.state[combo.F_FUNDS_WARN] == 0.0  # episode 2 still polls
    assert bot.state[combo.F_FUNDS_EPISODE] == 1.0
    bot, _ = run([*RESUMED_THEN_REFUSED, *[LOW] * 5])  # to bar 9: its own 300 s poll fails
    assert bot.state[combo.F_FUNDS_WARN] == 1.0
    assert bot.metrics()["bot_state"] == "PAUSED"
    assert bot.metrics()["funds_pauses"] == 2


# max_actions=10: the base fill takes all ten rows (exits, DCA orders, guards); the refusal at
# bar 2 re-lays the exits and guards in six, leaving room for the polls at 0, 15, 30 and 60 s.
# Poll 0 (bar 2) arms the owed 120 s (bar 4) and 300 s (bar 7) polls.
FEW_ROWS = 10


def test_polls_with_too_few_action_rows_still_give_up_at_300_s() -> None:
    bot, _ = run([*START, DIP, *[FLAT] * 4], max_actions=FEW_ROWS)  # to bar 6
    assert bot.state[combo.F_FUNDS_WARN] == 0.0
    assert bot.state[combo.F_FUNDS_EPISODE] == 1.0  # every poll armed, the 300 s one to come
    bot, r = run([*START, DIP, *[FLAT] * 5], max_actions=FEW_ROWS)  # to bar 7
    assert transitions(bot) == [(0, "user_start"), (2, "insufficient_funds")]
    assert bot.state[combo.F_FUNDS_WARN] == 1.0
    assert bot.state[combo.F_FUNDS_EPISODE] == 0.0
    assert bot.metrics()["bot_state"] == "PAUSED"
    assert len(r.orders) == 9


def test_an_owed_300_s_poll_resumes_as_with_room_for_every_poll() -> None:
    rows = [*START, DIP, FLAT, FLAT, UP, HOLD, HOLD, HOLD]  # funds back from bar 5
    (b1, r1), (b2, r2) = run(rows, max_actions=FEW_ROWS), run(rows)
    assert transitions(b1) == [
        (0, "user_start"),
        (2, "insufficient_funds"),
        (7, "funds_available"),
    ]
    assert entries_placed(r1, 7) == [REFUSED_REST]
    pd.testing.assert_frame_equal(r1.orders, r2.orders)
    pd.testing.assert_frame_equal(r1.fills, r2.fills)
    np.testing.assert_array_equal(b1.state, b2.state)


def test_compiled_and_python_paths_agree_on_owed_polls() -> None:
    rows = [*START, DIP, FLAT, FLAT, UP, HOLD, HOLD, HOLD]
    (b1, r1), (b2, r2) = (
        run(rows, mode=mode, max_actions=FEW_ROWS) for mode in ("compiled", "python")
    )
    pd.testing.assert_frame_equal(r1.orders, r2.orders)
    pd.testing.assert_frame_equal(r1.fills, r2.fills)
    np.testing.assert_array_equal(b1.state, b2.state)
    assert transitions(b1)[-1] == (7, "funds_available")
