"""The state header every bot kernel keeps at the front of its state vector.

Layout (float64): fixed fields, then a ring of the most recent lifecycle transitions, then
the bot's own fields from :data:`BOT_START`. Everything a checkpoint needs is in the vector.
"""

import numpy as np

from tradetower.bots import codes as C
from tradetower.jit_options import kernel_jit

H_STATE = 0
H_RESUME_TO = 1
H_CLOSE_TRIGGER = 2  # the trigger that started CLOSING (decides COMPLETED vs STOPPED)
H_N_TRANSITIONS = 3  # transitions recorded so far (the ring keeps the last LOG_CAP)
H_N_REJECTED = 4  # invalid transitions attempted (InvalidTransition, audited at ERROR)
H_REALIZED = 5  # realized PnL, net of fees (profit currency)
H_FEES = 6
H_CYCLES = 7
H_INVESTMENT = 8
H_SEQ = 9  # next order sequence number (clientOrderId tt-{bot}-{purpose}-{seq})
H_BAR = 10  # bar of the last event handled
H_TIME = 11  # time (epoch ms) of the last event handled
N_HEADER = 16

LOG_CAP = 64
LOG_WIDTH = 4  # bar, from, to, trigger
LOG_START = N_HEADER
BOT_START = LOG_START + LOG_CAP * LOG_WIDTH


def new_state(n_bot_fields: int) -> np.ndarray:
    """A zeroed state vector for a bot with ``n_bot_fields`` own fields, INITIALIZING."""
    state = np.zeros(BOT_START + n_bot_fields)
    state[H_STATE] = C.INITIALIZING
    state[H_RESUME_TO] = -1
    state[H_CLOSE_TRIGGER] = -1
    return state


@kernel_jit
def transition_nb(state: np.ndarray, to: int, trigger: int) -> bool:
    """Move the bot to ``to`` on ``trigger`` if the lifecycle table allows it.

    Records the transition in the ring; an invalid one leaves the state unchanged and is
    counted (``H_N_REJECTED``). PAUSED and ERROR return only to ``resume_to``; CLOSING ends
    COMPLETED only when a completing trigger started it.
    """
    src = int(state[H_STATE])
    ok = C.ALLOWED[src, to, trigger]
    if ok and (src == C.PAUSED or src == C.ERROR) and to != C.CLOSING and to != C.STOPPED:
        ok = to == int(state[H_RESUME_TO])
    if ok and src == C.CLOSING and trigger == C.DONE:
        closer = int(state[H_CLOSE_TRIGGER])
        completing = closer >= 0 and C.COMPLETING[closer]
        ok = (to == C.COMPLETED) == completing
    if not ok:
        state[H_N_REJECTED] += 1
        return False
    if to == C.PAUSED or to == C.ERROR:
        back = src
        if src == C.TRAILING or src == C.PUMP:
            back = C.ACTIVE
        state[H_RESUME_TO] = back
    if to == C.CLOSING:
        state[H_CLOSE_TRIGGER] = trigger
    n = int(state[H_N_TRANSITIONS])
    row = LOG_START + (n % LOG_CAP) * LOG_WIDTH
    state[row] = state[H_BAR]
    state[row + 1] = src
    state[row + 2] = to
    state[row + 3] = trigger
    state[H_N_TRANSITIONS] = n + 1
    state[H_STATE] = to
    return True


@kernel_jit
def finish_closing_nb(state: np.ndarray) -> bool:
    """CLOSING → COMPLETED or STOPPED, by the trigger that started the closing."""
    closer = int(state[H_CLOSE_TRIGGER])
    to = C.COMPLETED if closer >= 0 and C.COMPLETING[closer] else C.STOPPED
    return transition_nb(state, to, C.DONE)


@kernel_jit
def is_running_nb(state: np.ndarray) -> bool:
    s = int(state[H_STATE])
    return s == C.ACTIVE or s == C.TRAILING or s == C.PUMP
