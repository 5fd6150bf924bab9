"""Integer codes of the lifecycle for numba kernels, derived from :mod:`tradetower.lifecycle`.

The Python state machine owns the table; this module only numbers it, so kernels and the
Python side can never disagree about which transitions exist.
"""

from __future__ import annotations

import numpy as np

from tradetower.lifecycle import (
    ALLOWED_TRANSITIONS,
    COMPLETING_TRIGGERS,
    BotState,
    Trigger,
)

STATES: tuple[BotState, ...] = tuple(BotState)
TRIGGERS: tuple[Trigger, ...] = tuple(Trigger)
STATE_CODE = {s: i for i, s in enumerate(STATES)}
TRIGGER_CODE = {t: i for i, t in enumerate(TRIGGERS)}

# State codes as plain ints (numba freezes module globals)
INITIALIZING = STATE_CODE[BotState.INITIALIZING]
FUNDS_RESERVED = STATE_CODE[BotState.FUNDS_RESERVED]
WAITING = STATE_CODE[BotState.WAITING]
ACTIVE = STATE_CODE[BotState.ACTIVE]
TRAILING = STATE_CODE[BotState.TRAILING]
PUMP = STATE_CODE[BotState.PUMP]
PAUSED = STATE_CODE[BotState.PAUSED]
CLOSING = STATE_CODE[BotState.CLOSING]
STOPPED = STATE_CODE[BotState.STOPPED]
COMPLETED = STATE_CODE[BotState.COMPLETED]
ERROR = STATE_CODE[BotState.ERROR]

# Trigger codes
USER_START = TRIGGER_CODE[Trigger.USER_START]
START_CONDITION_PENDING = TRIGGER_CODE[Trigger.START_CONDITION_PENDING]
START_CONDITION_MET = TRIGGER_CODE[Trigger.START_CONDITION_MET]
TRAILING_STARTED = TRIGGER_CODE[Trigger.TRAILING_STARTED]
TRAILING_DONE = TRIGGER_CODE[Trigger.TRAILING_DONE]
PUMP_DETECTED = TRIGGER_CODE[Trigger.PUMP_DETECTED]
PUMP_CLEARED = TRIGGER_CODE[Trigger.PUMP_CLEARED]
CYCLE_CLOSED = TRIGGER_CODE[Trigger.CYCLE_CLOSED]
USER_PAUSE = TRIGGER_CODE[Trigger.USER_PAUSE]
INSUFFICIENT_FUNDS = TRIGGER_CODE[Trigger.INSUFFICIENT_FUNDS]
FUNDS_AVAILABLE = TRIGGER_CODE[Trigger.FUNDS_AVAILABLE]
USER_RESUME = TRIGGER_CODE[Trigger.USER_RESUME]
TAKE_PROFIT_HIT = TRIGGER_CODE[Trigger.TAKE_PROFIT_HIT]
STOP_LOSS_HIT = TRIGGER_CODE[Trigger.STOP_LOSS_HIT]
LIQUIDATION_BUFFER = TRIGGER_CODE[Trigger.LIQUIDATION_BUFFER]
USER_STOP = TRIGGER_CODE[Trigger.USER_STOP]
CLOSE_SIGNAL = TRIGGER_CODE[Trigger.CLOSE_SIGNAL]
KILL_SWITCH = TRIGGER_CODE[Trigger.KILL_SWITCH]
RISK_LIMIT = TRIGGER_CODE[Trigger.RISK_LIMIT]
TWAP_FINISHED = TRIGGER_CODE[Trigger.TWAP_FINISHED]
DONE = TRIGGER_CODE[Trigger.DONE]
STRATEGY_EXCEPTION = TRIGGER_CODE[Trigger.STRATEGY_EXCEPTION]


def _allowed() -> np.ndarray:
    table = np.zeros((len(STATES), len(STATES), len(TRIGGERS)), dtype=np.bool_)
    for src, dst, trig in ALLOWED_TRANSITIONS:
        table[STATE_CODE[src], STATE_CODE[dst], TRIGGER_CODE[trig]] = True
    return table


ALLOWED = _allowed()
"""``ALLOWED[from, to, trigger]``: the §2 table as a boolean cube."""

COMPLETING = np.zeros(len(TRIGGERS), dtype=np.bool_)
for _t in COMPLETING_TRIGGERS:
    COMPLETING[TRIGGER_CODE[_t]] = True

# Commands reach a bot as signals (EV_SIGNAL with this code): in a backtest from the signal
# array, live from the API or a webhook. Indicator signals use +1 (buy) and -1 (sell).
SIG_BUY = 1
SIG_SELL = -1
CMD_START = 101  # a MANUAL start condition is met
CMD_CLOSE = 102  # the CLOSE signal: stop with the bot's close exit mode
CMD_PAUSE = 103
CMD_RESUME = 104
CMD_STOP = 105  # user stop, with the configured closure
CMD_KILL = 106  # kill switch
CMD_ADD_FUNDS = 107  # the amount travels in the bot's params/state (see each bot)
CMD_RISK_CLOSE = 108  # the risk engine's close (bot drawdown limit): CLOSING with risk_limit
