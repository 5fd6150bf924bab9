"""Insufficient funds (STRATEGIES.md §4) as one piece the bot kernels share.

A funds refusal pauses the bot (``insufficient_funds``) once per episode and arms balance polls
at 0, 15, 30, 60, 120 and 300 s. At a poll the bot says whether its funds are there (what it
needs is its own affair); the helper decides: resume (``funds_available``, the bot re-places its
orders), wait for the next poll, or give up after the last one (WARNING; it stays PAUSED until a
user resume or added funds). Refused again at the very time a poll resumed it, the bot pauses
without new polls, so a shortfall cannot loop within one bar.

The bot keeps the episode in three consecutive state fields from ``at`` (:data:`FD_EPISODE`,
:data:`FD_PAUSES`, :data:`FD_WARN`) and the time of the last resume by a poll in a field of its
choosing; poll ``j`` is a timer tagged ``tag_poll + j``.
"""

import numpy as np
from numba import njit

from tradetower import kernel_abi as K
from tradetower.bots import codes as C
from tradetower.bots import header as H
from tradetower.kernel_tools import set_timer_nb

POLLS_S = (0.0, 15.0, 30.0, 60.0, 120.0, 300.0)
N_POLLS = 6

FD_EPISODE = 0  # 1 while paused for funds with polls pending
FD_PAUSES = 1  # pauses for funds so far
FD_WARN = 2  # the last poll failed (or a refusal right after a resume): WARNING
N_FUNDS_FIELDS = 3

POLL_WAIT = 0
POLL_RESUME = 1
POLL_GIVE_UP = 2


@njit(cache=True)
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
    """A refusal for funds while ``running``: pause once per episode and arm the polls."""
    if state[at + FD_EPISODE] > 0 or not running:
        return n
    if not H.transition_nb(state, C.PAUSED, C.INSUFFICIENT_FUNDS):
        return n
    state[at + FD_PAUSES] += 1.0
    if state[f_resumed_t] == now_ms:
        state[at + FD_WARN] = 1.0
        return n
    state[at + FD_EPISODE] = 1.0
    state[at + FD_WARN] = 0.0
    for j in range(N_POLLS):
        n = set_timer_nb(actions, n, now_ms + POLLS_S[j] * 1000.0, tag_poll + j)
    return n


@njit(cache=True)
def is_funds_poll_nb(state: np.ndarray, at: int, event: np.ndarray, tag_poll: float) -> bool:
    """Is this timer event a poll of the bot's current funds episode?"""
    tag = event[K.E_TAG]
    if tag < tag_poll or tag >= tag_poll + N_POLLS:
        return False
    return state[at + FD_EPISODE] > 0 and int(state[H.H_STATE]) == C.PAUSED


@njit(cache=True)
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
