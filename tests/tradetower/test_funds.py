"""The shared insufficient-funds helper (tradetower.bots.funds), as two different bots use it."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

import strategies.btd as btd
import strategies.loop as loop
from tradetower import kernel_abi as K
from tradetower.bots import codes as C
from tradetower.bots import header as H
from tradetower.bots.funds import (
    POLL_GIVE_UP,
    POLL_RESUME,
    POLL_WAIT,
    funds_pause_nb,
    funds_poll_nb,
    is_funds_poll_nb,
)

T0 = 1_704_067_200_000.0


def active_state(bot: ModuleType) -> np.ndarray:
    state = H.new_state(bot.state_size(5))
    H.transition_nb(state, C.ACTIVE, C.USER_START)
    return state


def timer(due: float, tag: float) -> np.ndarray:
    ev = np.zeros(K.N_EVENT)
    ev[K.E_TYPE] = K.EV_TIMER
    ev[K.E_TIME] = due
    ev[K.E_TAG] = tag
    return ev


def episode(bot: ModuleType, there_at: int | None) -> tuple[list[float], list[int], list[str]]:
    """Pause one bot for funds at T0, then poll; funds appear at poll ``there_at``."""
    state = active_state(bot)
    actions = np.zeros((16, K.N_ACTION))
    ep, resumed = bot.F_FUNDS_EPISODE, bot.F_FUNDS_RESUMED_T
    n = funds_pause_nb(state, ep, resumed, True, T0, actions, 0, bot.TAG_POLL)
    dues = (actions[:n, K.A_ID] - T0).tolist()
    assert (actions[:n, K.A_KIND] == K.A_SET_TIMER).all()
    assert (actions[:n, K.A_TAG] - bot.TAG_POLL).tolist() == list(range(6))
    # a second refusal in the same episode neither pauses again nor arms more polls
    assert funds_pause_nb(state, ep, resumed, False, T0, actions, n, bot.TAG_POLL) == n
    outcomes = []
    for j in range(n):
        ev = timer(actions[j, K.A_ID], actions[j, K.A_TAG])
        if not is_funds_poll_nb(state, ep, ev, bot.TAG_POLL):
            break
        outcome = funds_poll_nb(state, ep, resumed, ev, bot.TAG_POLL, j == there_at)
        outcomes.append(outcome)
        if outcome == POLL_RESUME:
            H.transition_nb(state, int(state[H.H_RESUME_TO]), C.FUNDS_AVAILABLE)
            break
    summary = [
        f"pauses={int(state[bot.F_FUNDS_PAUSES])}",
        f"warn={int(state[bot.F_FUNDS_WARN])}",
        f"state={C.STATES[int(state[H.H_STATE])].value}",
    ]
    return dues, outcomes, summary


@pytest.mark.nojit
@pytest.mark.parametrize(
    ("there_at", "outcomes", "final"),
    [
        (2, [POLL_WAIT, POLL_WAIT, POLL_RESUME], ["pauses=1", "warn=0", "state=ACTIVE"]),
        (None, [POLL_WAIT] * 5 + [POLL_GIVE_UP], ["pauses=1", "warn=1", "state=PAUSED"]),
    ],
)
def test_btd_and_loop_pause_poll_and_resume_identically(
    there_at: int | None, outcomes: list[int], final: list[str]
) -> None:
    for bot in (btd, loop):
        dues, got, summary = episode(bot, there_at)
        assert dues == [0.0, 15_000.0, 30_000.0, 60_000.0, 120_000.0, 300_000.0]
        assert got == outcomes
        assert summary == final


@pytest.mark.nojit
def test_refused_again_when_a_poll_just_resumed_pauses_without_new_polls() -> None:
    for bot in (btd, loop):
        state = active_state(bot)
        state[bot.F_FUNDS_RESUMED_T] = T0
        actions = np.zeros((8, K.N_ACTION))
        n = funds_pause_nb(
            state, bot.F_FUNDS_EPISODE, bot.F_FUNDS_RESUMED_T, True, T0, actions, 0, bot.TAG_POLL
        )
        assert n == 0 and state[bot.F_FUNDS_WARN] == 1.0
        assert C.STATES[int(state[H.H_STATE])].value == "PAUSED"
