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
    episode_poll_tag_nb,
    funds_arm_owed_nb,
    funds_pause_nb,
    funds_poll_nb,
    is_funds_poll_nb,
    new_episode_poll_tag_nb,
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


def polls_of(actions: np.ndarray, n0: int, n: int) -> list[tuple[float, float]]:
    """(due − T0, tag − TAG_POLL) of the timers in rows n0..n."""
    rows = actions[n0:n]
    assert (rows[:, K.A_KIND] == K.A_SET_TIMER).all()
    return [(a[K.A_ID] - T0, a[K.A_TAG] - btd.TAG_POLL) for a in rows]


@pytest.mark.nojit
def test_polls_that_do_not_fit_are_armed_by_the_first_poll() -> None:
    """Five of eight action rows are taken at the refusal: polls 0–2 go out, and poll 0 (due at
    once) arms 3–5 on the same schedule; the episode then runs as if all six had fitted."""
    state = active_state(btd)
    ep, resumed = btd.F_FUNDS_EPISODE, btd.F_FUNDS_RESUMED_T
    buffer = np.zeros((16, K.N_ACTION))
    actions = buffer[:8]  # the kernel's eight rows; what lies beyond must stay untouched
    n = funds_pause_nb(state, ep, resumed, True, T0, actions, 5, btd.TAG_POLL)
    assert n == 8
    assert polls_of(actions, 5, n) == [(0.0, 0.0), (15_000.0, 1.0), (30_000.0, 2.0)]
    assert not buffer[8:].any()
    armed = polls_of(actions, 5, n)
    outcomes = []
    for j in range(6):
        due, k = armed[j]
        ev = timer(T0 + due, btd.TAG_POLL + k)
        assert is_funds_poll_nb(state, ep, ev, btd.TAG_POLL)
        outcome = funds_poll_nb(state, ep, resumed, ev, btd.TAG_POLL, False)
        outcomes.append(outcome)
        more = np.zeros((8, K.N_ACTION))
        m = funds_arm_owed_nb(state, ep, ev, btd.TAG_POLL, more, 0) if outcome == POLL_WAIT else 0
        armed += polls_of(more, 0, m)
    assert armed == [
        (0.0, 0.0),
        (15_000.0, 1.0),
        (30_000.0, 2.0),
        (60_000.0, 3.0),
        (120_000.0, 4.0),
        (300_000.0, 5.0),
    ]
    assert outcomes == [POLL_WAIT] * 5 + [POLL_GIVE_UP]
    assert state[btd.F_FUNDS_WARN] == 1.0
    assert C.STATES[int(state[H.H_STATE])].value == "PAUSED"


@pytest.mark.nojit
def test_with_every_poll_armed_a_waiting_poll_arms_nothing_more() -> None:
    state = active_state(loop)
    ep = loop.F_FUNDS_EPISODE
    actions = np.zeros((8, K.N_ACTION))
    assert funds_pause_nb(state, ep, loop.F_FUNDS_RESUMED_T, True, T0, actions, 0, 20.0) == 6
    ev = timer(T0, 20.0)
    assert funds_poll_nb(state, ep, loop.F_FUNDS_RESUMED_T, ev, 20.0, False) == POLL_WAIT
    assert funds_arm_owed_nb(state, ep, ev, 20.0, actions, 3) == 3


@pytest.mark.nojit
def test_no_room_for_any_poll_pauses_with_the_warning_at_once() -> None:
    """Nothing could ever poll: the bot stays PAUSED with the WARNING, as after a failed last
    poll, until a user resume or added funds."""
    state = active_state(btd)
    buffer = np.zeros((16, K.N_ACTION))
    n = funds_pause_nb(
        state, btd.F_FUNDS_EPISODE, btd.F_FUNDS_RESUMED_T, True, T0, buffer[:8], 8, btd.TAG_POLL
    )
    assert n == 8 and not buffer.any()
    assert state[btd.F_FUNDS_PAUSES] == 1.0 and state[btd.F_FUNDS_WARN] == 1.0
    assert not is_funds_poll_nb(state, btd.F_FUNDS_EPISODE, timer(T0, btd.TAG_POLL), btd.TAG_POLL)
    assert C.STATES[int(state[H.H_STATE])].value == "PAUSED"


@pytest.mark.nojit
def test_each_episode_polls_on_tags_of_its_own() -> None:
    """Episode e (0-based) uses tags base + 6e … base + 6e + 5; a poll of episode 1 left over
    after a resume is not one of episode 2's."""
    state = active_state(loop)
    ep, resumed = loop.F_FUNDS_EPISODE, loop.F_FUNDS_RESUMED_T
    actions = np.zeros((8, K.N_ACTION))
    tags = []
    for t in (T0, T0 + 20_000.0):
        tag = new_episode_poll_tag_nb(state, ep, 20.0)
        n = funds_pause_nb(state, ep, resumed, True, t, actions, 0, tag)
        assert episode_poll_tag_nb(state, ep, 20.0) == tag
        tags.append(actions[:n, K.A_TAG].tolist())
        # poll 0 finds the funds: resume (the bot clears the episode), polls 1–5 stay armed
        assert funds_poll_nb(state, ep, resumed, timer(t, tag), tag, True) == POLL_RESUME
        H.transition_nb(state, int(state[H.H_RESUME_TO]), C.FUNDS_AVAILABLE)
        state[ep] = 0.0
    assert tags == [[20.0, 21.0, 22.0, 23.0, 24.0, 25.0], [26.0, 27.0, 28.0, 29.0, 30.0, 31.0]]
    # a third episode: episode 1's 300 s poll (tag 25) is not one of its polls
    tag = new_episode_poll_tag_nb(state, ep, 20.0)
    funds_pause_nb(state, ep, resumed, True, T0 + 40_000.0, actions, 0, tag)
    current = episode_poll_tag_nb(state, ep, 20.0)
    assert current == 32.0
    assert not is_funds_poll_nb(state, ep, timer(T0 + 300_000.0, 25.0), current)
    assert is_funds_poll_nb(state, ep, timer(T0 + 340_000.0, 37.0), current)


@pytest.mark.nojit
def test_owed_polls_are_reckoned_from_the_poll_s_due_time_not_its_bar() -> None:
    """A simulated timer event carries its bar's open in E_TIME and its own due time in E_CODE:
    a poll due 40 s into a one-minute bar arms the owed polls on the pause's true schedule."""
    state = active_state(btd)
    ep, resumed = btd.F_FUNDS_EPISODE, btd.F_FUNDS_RESUMED_T
    paused_at = T0 + 40_000.0
    actions = np.zeros((8, K.N_ACTION))
    n = funds_pause_nb(state, ep, resumed, True, paused_at, actions, 5, btd.TAG_POLL)
    assert n == 8
    ev = timer(T0, btd.TAG_POLL)  # poll 0, delivered in the bar that opened at T0
    ev[K.E_CODE] = paused_at
    assert funds_poll_nb(state, ep, resumed, ev, btd.TAG_POLL, False) == POLL_WAIT
    more = np.zeros((8, K.N_ACTION))
    m = funds_arm_owed_nb(state, ep, ev, btd.TAG_POLL, more, 0)
    assert [due - 40_000.0 for due, _ in polls_of(more, 0, m)] == [60_000.0, 120_000.0, 300_000.0]
