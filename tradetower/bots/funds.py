"""Insufficient funds (STRATEGIES.md §4) as one piece the bot kernels share.

A funds refusal pauses the bot (``insufficient_funds``) once per episode and arms balance polls
at 0, 15, 30, 60, 120 and 300 s. At a poll the bot says whether its funds are there (what it
needs is its own affair); the helper decides: resume (``funds_available``, the bot re-places its
orders), wait for the next poll, or give up after the last one (WARNING; it stays PAUSED until a
user resume or added funds). Refused again at the very time a poll resumed it, the bot pauses
without new polls, so a shortfall cannot loop within one bar.

The bot keeps the episode in three consecutive state fields from ``at`` (:data:`FD_EPISODE`,
:data:`FD_PAUSES`, :data:`FD_WARN`) and the time of the last resume by a poll in a field of its
choosing; poll ``j`` is a timer tagged ``tag_poll + j``. Timers cannot be cancelled, so the polls
of an episode a poll ended early still fire later: a bot gives each episode tags of its own
(:func:`new_episode_poll_tag_nb` at the pause, :func:`episode_poll_tag_nb` at a poll).

The polls are armed only as far as the kernel's action rows allow; the rest are owed (counted in
:data:`FD_EPISODE`, 1 + owed) and armed by the first poll that waits (:func:`funds_arm_owed_nb`).
With no row free at all nothing could ever poll: the bot pauses with the WARNING at once.
"""

import numpy as np

from tradetower import kernel_abi as K
from tradetower.bots import codes as C
from tradetower.bots import header as H
from tradetower.jit_options import kernel_jit
from tradetower.kernel_tools import set_timer_nb

POLLS_S = (0.0, 15.0, 30.0, 60.0, 120.0, 300.0)
N_POLLS = 6

FD_EPISODE = 0  # 0 outside an episode, else 1 + the polls not armed yet (no room at the pause)
FD_PAUSES = 1  # pauses for funds so far
FD_WARN = 2  # the last poll failed (or a refusal right after a resume): WARNING
N_FUNDS_FIELDS = 3

POLL_WAIT = 0
POLL_RESUME = 1
POLL_GIVE_UP = 2


@kernel_jit
def funds_pause_nb(
    state: np.ndarray,
    at: int,
    f_resumed_t: int,
    running: bool,
    now_ms: float,
    actions: np.ndarray,
    n: int,
    tag_poll: float,
) -> int:
    """A refusal for funds while ``running``: pause once per episode and arm the polls, as many
    as ``actions`` has rows for (the rest are owed: :func:`funds_arm_owed_nb`)."""
    if state[at + FD_EPISODE] > 0 or not running:
        return n
    if not H.transition_nb(state, C.PAUSED, C.INSUFFICIENT_FUNDS):
        return n
    state[at + FD_PAUSES] += 1.0
    if state[f_resumed_t] == now_ms:
        state[at + FD_WARN] = 1.0
        return n
    if n >= actions.shape[0]:  # no row for any poll: paused with the WARNING at once
        state[at + FD_WARN] = 1.0
        return n
    state[at + FD_WARN] = 0.0
    return _arm_polls_nb(state, at, now_ms, 0, actions, n, tag_poll)


@kernel_jit
def _arm_polls_nb(
    state: np.ndarray, at: int, pause_ms: float, first: int, actions: np.ndarray, n: int, tag: float
) -> int:
    """Arm polls ``first``… of the episode paused at ``pause_ms`` as far as ``actions`` has rows;
    the episode field counts the rest as owed."""
    j = first
    while j < N_POLLS and n < actions.shape[0]:
        n = set_timer_nb(actions, n, pause_ms + POLLS_S[j] * 1000.0, tag + j)
        j += 1
    state[at + FD_EPISODE] = 1.0 + (N_POLLS - j)
    return n


@kernel_jit
def new_episode_poll_tag_nb(state: np.ndarray, at: int, tag_base: float) -> float:
    """The ``tag_poll`` to pass to :func:`funds_pause_nb`: episode ``e`` (pauses so far, from 0)
    polls on ``tag_base + N_POLLS·e + j``."""
    return float(tag_base + N_POLLS * state[at + FD_PAUSES])


@kernel_jit
def episode_poll_tag_nb(state: np.ndarray, at: int, tag_base: float) -> float:
    """The ``tag_poll`` of the latest episode, for :func:`is_funds_poll_nb` and the poll calls."""
    return float(tag_base + N_POLLS * max(state[at + FD_PAUSES] - 1.0, 0.0))


@kernel_jit
def funds_arm_owed_nb(
    state: np.ndarray, at: int, event: np.ndarray, tag_poll: float, actions: np.ndarray, n: int
) -> int:
    """After :func:`funds_poll_nb` said POLL_WAIT: arm the polls the pause had no room for, on
    the episode's schedule (reckoned back from this poll's time). Nothing when none is owed."""
    owed = int(state[at + FD_EPISODE]) - 1
    if owed <= 0:
        return n
    j = int(event[K.E_TAG] - tag_poll + 0.5)
    first = N_POLLS - owed
    # A timer event carries its due time in E_CODE (E_TIME is its bar's open): the schedule is
    # reckoned from the poll's own due time, so owed polls land exactly where they would have.
    due = event[K.E_CODE] if event[K.E_CODE] > 0.0 else event[K.E_TIME]
    pause_ms = due - POLLS_S[j] * 1000.0
    n = _arm_polls_nb(state, at, pause_ms, first, actions, n, tag_poll)
    if int(state[at + FD_EPISODE]) - 1 == owed and j == first - 1:
        # the last armed poll, and still no room: no poll is left to come
        state[at + FD_WARN] = 1.0
        state[at + FD_EPISODE] = 0.0
    return n


@kernel_jit
def is_funds_poll_nb(state: np.ndarray, at: int, event: np.ndarray, tag_poll: float) -> bool:
    """Is this timer event a poll of the bot's current funds episode?"""
    tag = event[K.E_TAG]
    if tag < tag_poll or tag >= tag_poll + N_POLLS:
        return False
    return state[at + FD_EPISODE] > 0 and int(state[H.H_STATE]) == C.PAUSED


@kernel_jit
def funds_poll_nb(
    state: np.ndarray,
    at: int,
    f_resumed_t: int,
    event: np.ndarray,
    tag_poll: float,
    funds_there: bool,
) -> int:
    """The outcome of a poll (:func:`is_funds_poll_nb` said it is one): POLL_RESUME (the bot
    resumes with ``funds_available``), POLL_WAIT, or POLL_GIVE_UP after the last poll."""
    if funds_there:
        state[f_resumed_t] = event[K.E_TIME]
        return POLL_RESUME
    if event[K.E_TAG] == tag_poll + N_POLLS - 1:
        state[at + FD_WARN] = 1.0
        state[at + FD_EPISODE] = 0.0
        return POLL_GIVE_UP
    return POLL_WAIT
