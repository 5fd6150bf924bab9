"""TWAP: buy or sell a base quantity in equal time slices (STRATEGIES.md §3.8).

``S = ⌊duration·60/frequency⌋`` slices, one every ``frequency`` seconds from the activation
time: slice k sends ``floor_lot(remaining/(S−k))`` as a market IOC, the last slice sends the
rest. A slice the price limit forbids (BUY above it, SELL below it) is skipped and its quantity
stays in ``remaining``, to be re-spread over the slices left. The run is COMPLETED (through
CLOSING, trigger ``twap_finished``) after the last slice or when nothing remains; there is no
catch-up order, so an incomplete run ends with ``fill_ratio < 1``.

A slice refused for funds pauses the run (STRATEGIES.md §4, through :mod:`tradetower.bots.funds`):
balance polls at 0, 15, 30, 60, 120 and 300 s; the first that finds the funds for the refused
slice resumes (``funds_available``) and re-places it; after the last the run stays PAUSED until a
user resume. Slices that fall due meanwhile are missed like any paused slice. Each episode polls
on timer tags of its own, above the slice timer's, so the polls an earlier episode left behind
(timers cannot be cancelled) never count for a later one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, ClassVar

import numpy as np
from numba import njit
from pydantic import AliasChoices, Field, model_validator

from tradetower import kernel_abi as K
from tradetower.bots import codes as C
from tradetower.bots import header as H
from tradetower.bots.adapter import BotStrategy
from tradetower.bots.commands import forced_close_trigger_nb
from tradetower.bots.funds import (
    FD_PAUSES,
    FD_WARN,
    N_FUNDS_FIELDS,
    POLL_RESUME,
    POLL_WAIT,
    episode_poll_tag_nb,
    funds_arm_owed_nb,
    funds_pause_nb,
    funds_poll_nb,
    is_funds_poll_nb,
    new_episode_poll_tag_nb,
)
from tradetower.config import FrozenConfig
from tradetower.domain.bars import MarketData
from tradetower.domain.instrument import Instrument
from tradetower.errors import ConfigError
from tradetower.jit_options import NO_NRT, kernel_jit
from tradetower.kernel_signature import KERNEL_SIGNATURE
from tradetower.kernel_tools import (
    arm_cross_nb,
    cancel_tag_nb,
    disarm_tag_nb,
    floor_qty_nb,
    place_nb,
    set_timer_nb,
)
from tradetower.lifecycle import Trigger

logger = logging.getLogger(__name__)


def _alias(name: str, camel: str) -> AliasChoices:
    return AliasChoices(name, camel)


class TwapDirection(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class TwapStartCondition(StrEnum):
    IMMEDIATELY = "IMMEDIATELY"
    MANUAL = "MANUAL"
    TRIGGER_PRICE = "TRIGGER_PRICE"


class MarginType(StrEnum):
    ISOLATED = "ISOLATED"
    CROSS = "CROSS"


class TwapConfig(FrozenConfig):
    direction: TwapDirection
    """BUY or SELL."""
    total_amount: float = Field(gt=0, validation_alias=_alias("total_amount", "totalAmount"))
    """Base quantity to execute over the whole run."""
    duration: float = Field(ge=5, le=1440)
    """Length of the schedule, in minutes."""
    frequency: float = Field(ge=5, le=60)
    """Seconds between two slices."""
    margin_type: MarginType | None = Field(
        default=None, validation_alias=_alias("margin_type", "marginType")
    )
    """Futures only: ISOLATED or CROSS."""
    leverage: float | None = Field(default=None, ge=1, le=125)
    """Futures only: the leverage (x); must match the instrument's."""
    reduce_only: bool = Field(default=False, validation_alias=_alias("reduce_only", "reduceOnly"))
    """Each slice is capped by the position it reduces; no position at start → ERROR."""
    price_limit: float | None = Field(
        default=None, gt=0, validation_alias=_alias("price_limit", "priceLimit")
    )
    """Quote price: a BUY slice is skipped above it, a SELL slice below it."""
    start_condition: TwapStartCondition = Field(
        default=TwapStartCondition.IMMEDIATELY,
        validation_alias=_alias("start_condition", "startCondition"),
    )
    """IMMEDIATELY, MANUAL (a start command) or TRIGGER_PRICE (a price cross)."""
    trigger_price: float | None = Field(
        default=None, gt=0, validation_alias=_alias("trigger_price", "triggerPrice")
    )
    """Quote price whose crossing starts the schedule (start_condition TRIGGER_PRICE)."""

    @property
    def n_slices(self) -> int:
        """``S = ⌊duration·60/frequency⌋``."""
        return math.floor(self.duration * 60.0 / self.frequency + 1e-9)

    @model_validator(mode="after")
    def _rules(self) -> TwapConfig:
        trig = self.start_condition == TwapStartCondition.TRIGGER_PRICE
        if trig and self.trigger_price is None:
            raise ValueError("trigger_price: required when start_condition is TRIGGER_PRICE")
        if not trig and self.trigger_price is not None:
            raise ValueError(
                f"trigger_price ({self.trigger_price}) is only used with start_condition "
                "TRIGGER_PRICE"
            )
        return self


# --- params (float64 vector) ---
P_DIR = 0  # +1 BUY, -1 SELL
P_TOTAL = 1
P_N_SLICES = 2
P_FREQ_MS = 3
P_REDUCE = 4
P_LIMIT = 5  # NaN: none
P_START = 6  # 0 IMMEDIATELY, 1 MANUAL, 2 TRIGGER_PRICE
P_TRIGGER = 7
N_PARAMS = 8

START_IMMEDIATELY = 0
START_MANUAL = 1
START_TRIGGER = 2

# --- own state fields (offsets from H.BOT_START) ---
B = H.BOT_START
S_LOT = B + 0  # venue rules, written by check() from the instrument
S_LOT_DEC = B + 1
S_MIN_QTY = B + 2
S_MIN_NOTIONAL = B + 3
S_START_MS = B + 4  # activation time: slice k is due at start + k·frequency
S_ARRIVAL = B + 5  # mark at activation
S_NEXT_TIMER = B + 6  # index of the slice the next timer is for
S_K = B + 7  # next slice to decide
S_DUE = B + 8  # slices due and not yet decided (waiting for a mark)
S_REMAINING = B + 9
S_COMMITTED = B + 10  # quantity of slice orders sent and not yet done
S_INFLIGHT = B + 11  # slice orders sent and not yet done
S_EXEC_QTY = B + 12
S_NOTIONAL = B + 13
S_BEST = B + 14
S_WORST = B + 15
S_N_EXEC = B + 16
S_N_SKIPPED = B + 17  # price limit
S_N_SKIPPED_MIN = B + 18  # below the venue minimums (SKIPPED_MIN)
S_N_UNFILLED = B + 19  # sent, nothing filled (rejected or IOC expired)
S_N_MISSED = B + 20  # due while PAUSED (no catch-up)
S_POS = B + 21  # last position the venue reported
S_MARK = B + 22  # last mark the venue reported
S_START_BAR = B + 23
S_END_BAR = B + 24
S_EXHAUSTED = B + 25  # reduce-only with nothing left to reduce
S_ERROR = B + 26  # 1: reduce_only without a position at start
S_N_SLICES = B + 27  # S, copied from the params so helpers need only the state
S_ACTIVATED = B + 28
S_FUNDS_EPISODE = B + 29  # the shared funds helper's three fields (tradetower.bots.funds)
S_FUNDS_PAUSES = S_FUNDS_EPISODE + FD_PAUSES
S_FUNDS_WARN = S_FUNDS_EPISODE + FD_WARN  # the last balance poll failed: PAUSED until a resume
S_FUNDS_RESUMED_T = S_FUNDS_EPISODE + N_FUNDS_FIELDS  # time of the last resume by a poll
S_RETRY_QTY = S_FUNDS_RESUMED_T + 1  # the slice refused for funds, re-placed on resume
S_TAKER = S_FUNDS_RESUMED_T + 2  # venue rules for the funds a slice needs, written by check()
S_MARGIN = S_FUNDS_RESUMED_T + 3
S_LEVERAGE = S_FUNDS_RESUMED_T + 4
N_FIELDS = S_LEVERAGE + 1 - B

TIMER_TAG = 1.0  # the slice timer
START_TAG = 2.0
# Funds episode e (from 0) polls on TAG_POLL + 6e + j, j = 0…5: always above TIMER_TAG, so a
# poll is never taken for a slice timer (a leftover poll of an earlier episode is ignored).
TAG_POLL = 20.0
SLICE_TAG = 1000.0

SETUP_FAILED = C.TRIGGER_CODE[Trigger.SETUP_FAILED]
ERR_NO_POSITION = 1.0


@kernel_jit
def _floor_lot_nb(qty: float, lot: float, decimals: float) -> float:
    if lot <= 0.0:
        return qty
    return floor_qty_nb(qty, lot, decimals)


@kernel_jit
def _finish_nb(state: np.ndarray) -> None:
    """CLOSING (``twap_finished``) → COMPLETED once nothing is due and no slice is out."""
    s = int(state[H.H_STATE])
    if s != C.ACTIVE and s != C.PAUSED:
        return
    if state[S_INFLIGHT] > 0 or state[S_DUE] > 0 or state[S_RETRY_QTY] > 0:
        return
    done = state[S_K] >= state[S_N_SLICES] or state[S_REMAINING] <= 0.0 or state[S_EXHAUSTED] > 0
    if not done:
        return
    if H.transition_nb(state, C.CLOSING, C.TWAP_FINISHED):
        state[H.H_CYCLES] = 1.0
        state[S_END_BAR] = state[H.H_BAR]
        H.finish_closing_nb(state)


@kernel_jit
def _send_nb(
    params: np.ndarray, state: np.ndarray, qty: float, mark: float, actions: np.ndarray, n: int
) -> tuple[int, bool]:
    """Send one slice of ``qty`` at ``mark`` (NaN: unknown) as a market IOC unless reduce_only,
    the price limit or the venue minimums forbid it. Returns the rows written and whether the
    slice was decided (sent, or counted as skipped)."""
    direction = params[P_DIR]
    limit = params[P_LIMIT]
    reduce = params[P_REDUCE] > 0
    if reduce:
        room = -direction * state[S_POS] - state[S_COMMITTED]
        if room <= 0.0:
            if state[S_COMMITTED] <= 0.0:
                state[S_EXHAUSTED] = 1.0
            return n, False
        qty = min(qty, _floor_lot_nb(room, state[S_LOT], state[S_LOT_DEC]))
    if (limit == limit and mark == mark) and (
        (direction > 0 and mark > limit) or (direction < 0 and mark < limit)
    ):
        state[S_N_SKIPPED] += 1
        return n, True
    ref = mark if mark == mark else state[S_MARK]
    if (
        qty <= 0.0
        or qty < state[S_MIN_QTY]
        or (ref > 0.0 and qty * ref < state[S_MIN_NOTIONAL] - 1e-12)
    ):
        state[S_N_SKIPPED_MIN] += 1
        return n, True
    row = n
    n = place_nb(actions, n, 0, direction, K.MARKET, np.nan, qty, SLICE_TAG, False, reduce)
    if row < actions.shape[0]:
        actions[row, K.A_TIF] = K.IOC
    state[S_COMMITTED] += qty
    state[S_INFLIGHT] += 1
    state[H.H_SEQ] += 1
    return n, True


@kernel_jit
def _retry_nb(
    params: np.ndarray, state: np.ndarray, mark: float, actions: np.ndarray, n: int
) -> int:
    """Re-place the slice refused for funds once the run is ACTIVE again. It stops counting as
    unfilled and counts by the new decision instead."""
    owed = state[S_RETRY_QTY]
    if owed <= 0.0 or int(state[H.H_STATE]) != C.ACTIVE:
        return n
    state[S_RETRY_QTY] = 0.0
    avail = state[S_REMAINING] - state[S_COMMITTED]
    if avail <= 0.0:
        return n
    qty = min(owed, _floor_lot_nb(avail, state[S_LOT], state[S_LOT_DEC]))
    n, decided = _send_nb(params, state, qty, mark, actions, n)
    if decided:
        state[S_N_UNFILLED] = max(0.0, state[S_N_UNFILLED] - 1)
    return n


@kernel_jit
def _decide_nb(params: np.ndarray, state: np.ndarray, mark: float, actions: np.ndarray) -> int:
    """Decide the owed re-placement and every due slice at ``mark`` (NaN: unknown); returns
    the action rows written."""
    n = _retry_nb(params, state, mark, actions, 0)
    n_slices = params[P_N_SLICES]
    lot = state[S_LOT]
    dec = state[S_LOT_DEC]
    while state[S_DUE] > 0 and int(state[H.H_STATE]) == C.ACTIVE:
        state[S_DUE] -= 1
        k = state[S_K]
        state[S_K] = k + 1
        avail = state[S_REMAINING] - state[S_COMMITTED]
        if avail <= 0.0:
            continue
        if k >= n_slices - 1:
            qty = _floor_lot_nb(avail, lot, dec)  # the last slice takes the rest
        else:
            qty = _floor_lot_nb(avail / (n_slices - k), lot, dec)
        n, _ = _send_nb(params, state, qty, mark, actions, n)
    return n


@kernel_jit
def _funds_there_nb(params: np.ndarray, state: np.ndarray, event: np.ndarray) -> bool:
    """Would the venue take the refused slice now? Spot BUY: free quote for it at the last
    mark plus the taker fee; spot SELL: base not held by slices out; margin: the margin of the
    position it would leave (reducing is always allowed). A poll carries no mark or position:
    the last ones reported stand in."""
    qty = state[S_RETRY_QTY]
    px = state[S_MARK]
    if qty <= 0.0:
        return True
    if not px > 0.0:
        return False
    direction = params[P_DIR]
    taker = state[S_TAKER]
    pos = event[K.E_POS_QTY] if event[K.E_INST] >= 0 else state[S_POS]
    if state[S_MARGIN] > 0:
        lev = state[S_LEVERAGE]
        allowed = max(0.0, event[K.E_EQUITY] * lev / (px * (1.0 + taker * lev)))
        cap = allowed + abs(pos) if direction * pos < 0.0 else max(0.0, allowed - abs(pos))
        return bool(qty <= cap * (1.0 + 1e-9) + 1e-12)
    if direction > 0:
        return bool(qty * px * (1.0 + taker) <= event[K.E_FREE] + 1e-9)
    return bool(qty <= pos - state[S_COMMITTED] + 1e-12)


@kernel_jit
def _resume_nb(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray, why: int
) -> int:
    """PAUSED → back (user resume or funds back); the refused slice is re-placed at once, or
    at the next event with a mark when the price limit needs one."""
    if not H.transition_nb(state, int(state[H.H_RESUME_TO]), why):
        return 0
    state[S_FUNDS_EPISODE] = 0.0
    n = 0
    has_mark = event[K.E_INST] >= 0 and event[K.E_MARK] > 0.0
    if params[P_LIMIT] != params[P_LIMIT] or has_mark:
        n = _retry_nb(params, state, event[K.E_MARK] if has_mark else np.nan, actions, 0)
    _finish_nb(state)
    return n


@kernel_jit
def _funds_poll_nb(
    params: np.ndarray, state: np.ndarray, event: np.ndarray, actions: np.ndarray, tag_poll: float
) -> int:
    """A balance poll of the current funds episode: resume with the refused slice, or wait (and
    arm the polls the pause had no action row for), or give up after the last."""
    there = _funds_there_nb(params, state, event)
    outcome = funds_poll_nb(state, S_FUNDS_EPISODE, S_FUNDS_RESUMED_T, event, tag_poll, there)
    if outcome == POLL_RESUME:
        return _resume_nb(params, state, event, actions, C.FUNDS_AVAILABLE)
    if outcome == POLL_WAIT:
        return funds_arm_owed_nb(state, S_FUNDS_EPISODE, event, tag_poll, actions, 0)
    return 0


@kernel_jit
def _activate_nb(
    params: np.ndarray,
    state: np.ndarray,
    now_ms: float,
    price: float,
    trigger: int,
    actions: np.ndarray,
) -> int:
    if not H.transition_nb(state, C.ACTIVE, trigger):
        return 0
    state[S_START_MS] = now_ms
    state[S_ARRIVAL] = price
    state[S_REMAINING] = params[P_TOTAL]
    state[S_START_BAR] = state[H.H_BAR]
    state[S_ACTIVATED] = 1.0
    state[S_K] = 0.0
    state[S_DUE] = 1.0  # slice 0 is due now
    n = 0
    if params[P_N_SLICES] > 1:
        state[S_NEXT_TIMER] = 1.0
        n = set_timer_nb(actions, n, now_ms + params[P_FREQ_MS], TIMER_TAG)
    n += _decide_nb(params, state, price, actions[n:])
    _finish_nb(state)
    return n


@kernel_jit
def _stop_nb(state: np.ndarray, trigger: int, actions: np.ndarray) -> int:
    """A user stop (or close/kill): cancel the slice out, keep what was executed → STOPPED."""
    s = int(state[H.H_STATE])
    if s == C.STOPPED or s == C.COMPLETED or s == C.CLOSING:
        return 0
    if s == C.ERROR and trigger != C.USER_STOP and trigger != C.KILL_SWITCH:
        return 0
    if not H.transition_nb(state, C.CLOSING, trigger):
        return 0
    n = cancel_tag_nb(actions, 0, 0, SLICE_TAG)
    n = disarm_tag_nb(actions, n, START_TAG)
    state[S_DUE] = 0.0
    state[S_END_BAR] = state[H.H_BAR]
    H.finish_closing_nb(state)
    return n


@njit(KERNEL_SIGNATURE, cache=True, **NO_NRT)
def twap_on_event_nb(params, state, event, actions):  # type: ignore[no-untyped-def]
    et = int(event[K.E_TYPE])
    state[H.H_BAR] = event[K.E_BAR]
    state[H.H_TIME] = event[K.E_TIME]
    has_mark = event[K.E_INST] >= 0 and event[K.E_MARK] > 0.0
    if event[K.E_INST] >= 0:
        pos = event[K.E_POS_QTY]
        # float residue of the venue's position below a millionth of a lot reads as flat
        state[S_POS] = 0.0 if abs(pos) < max(state[S_LOT] * 1e-6, 1e-9) else pos
        if has_mark:
            state[S_MARK] = event[K.E_MARK]
    s = int(state[H.H_STATE])
    tag = event[K.E_TAG]

    if et == K.EV_START:
        if s != C.INITIALIZING:
            return 0
        state[S_N_SLICES] = params[P_N_SLICES]
        price = event[K.E_PRICE]
        if params[P_REDUCE] > 0 and -params[P_DIR] * state[S_POS] <= 0.0:
            state[S_ERROR] = ERR_NO_POSITION
            H.transition_nb(state, C.ERROR, SETUP_FAILED)
            return 0
        cond = int(params[P_START])
        if cond == START_IMMEDIATELY:
            return _activate_nb(params, state, event[K.E_TIME], price, C.USER_START, actions)
        H.transition_nb(state, C.WAITING, C.START_CONDITION_PENDING)
        if cond == START_TRIGGER:
            level = params[P_TRIGGER]
            if level == price:
                return _activate_nb(
                    params, state, event[K.E_TIME], price, C.START_CONDITION_MET, actions
                )
            return arm_cross_nb(actions, 0, 0, level, level > price, START_TAG)
        return 0

    if et == K.EV_TRIGGER:
        if tag == START_TAG and s == C.WAITING:
            return _activate_nb(
                params, state, event[K.E_TIME], event[K.E_PRICE], C.START_CONDITION_MET, actions
            )
        return 0

    if et == K.EV_TIMER:
        tag_poll = episode_poll_tag_nb(state, S_FUNDS_EPISODE, TAG_POLL)
        if is_funds_poll_nb(state, S_FUNDS_EPISODE, event, tag_poll):
            return _funds_poll_nb(params, state, event, actions, tag_poll)
        if tag != TIMER_TAG or (s != C.ACTIVE and s != C.PAUSED):
            return 0
        n = 0
        nxt = state[S_NEXT_TIMER] + 1.0
        if nxt < params[P_N_SLICES]:
            due = state[S_START_MS] + nxt * params[P_FREQ_MS]
            n = set_timer_nb(actions, n, due, TIMER_TAG)
        state[S_NEXT_TIMER] = nxt
        if s == C.PAUSED:
            state[S_K] += 1  # no catch-up: the slice is lost, its quantity re-spread
            state[S_N_MISSED] += 1
            _finish_nb(state)
            return n
        state[S_DUE] += 1
        # The price limit needs the mark at the slice time: a timer that does not carry one
        # defers the decision to the next event that does (the bar's close, same bar).
        if params[P_LIMIT] != params[P_LIMIT] or has_mark:
            mark = event[K.E_MARK] if has_mark else np.nan
            n += _decide_nb(params, state, mark, actions[n:])
            _finish_nb(state)
        return n

    if et == K.EV_BAR:
        if s == C.ACTIVE and (state[S_DUE] > 0 or state[S_RETRY_QTY] > 0):
            n = _decide_nb(params, state, event[K.E_PRICE], actions)
            _finish_nb(state)
            return n
        return 0

    if et == K.EV_FILL:
        if tag != SLICE_TAG or event[K.E_CODE] == 1 or event[K.E_ID] < 0:
            return 0
        qty = event[K.E_QTY]
        px = event[K.E_PRICE]
        state[H.H_FEES] += event[K.E_FEE]
        state[S_REMAINING] = max(0.0, round(state[S_REMAINING] - qty, 12))
        state[S_COMMITTED] = max(0.0, round(state[S_COMMITTED] - qty, 12))
        first = state[S_EXEC_QTY] <= 0.0
        state[S_EXEC_QTY] = round(state[S_EXEC_QTY] + qty, 12)
        state[S_NOTIONAL] += qty * px
        better = first or (px < state[S_BEST] if params[P_DIR] > 0 else px > state[S_BEST])
        worse = first or (px > state[S_WORST] if params[P_DIR] > 0 else px < state[S_WORST])
        if better:
            state[S_BEST] = px
        if worse:
            state[S_WORST] = px
        if event[K.E_REMAINING] <= 0.0:
            state[S_INFLIGHT] = max(0.0, state[S_INFLIGHT] - 1)
            state[S_N_EXEC] += 1
            _finish_nb(state)
        return 0

    if et == K.EV_CANCEL:
        if tag != SLICE_TAG:
            return 0
        state[S_COMMITTED] = max(0.0, round(state[S_COMMITTED] - event[K.E_REMAINING], 12))
        state[S_INFLIGHT] = max(0.0, state[S_INFLIGHT] - 1)
        if event[K.E_QTY] > 0.0:
            state[S_N_EXEC] += 1
        else:
            state[S_N_UNFILLED] += 1
        n = 0
        if int(event[K.E_CODE]) == K.R_INSUFFICIENT_FUNDS and event[K.E_QTY] <= 0.0:
            n = funds_pause_nb(
                state,
                S_FUNDS_EPISODE,
                S_FUNDS_RESUMED_T,
                s == C.ACTIVE,
                event[K.E_TIME],
                actions,
                0,
                new_episode_poll_tag_nb(state, S_FUNDS_EPISODE, TAG_POLL),
            )
            if s == C.ACTIVE and int(state[H.H_STATE]) == C.PAUSED:
                state[S_RETRY_QTY] = event[K.E_REMAINING]
        _finish_nb(state)
        return n

    if et == K.EV_SIGNAL:
        code = int(event[K.E_CODE])
        if code == C.CMD_STOP:
            return _stop_nb(state, C.USER_STOP, actions)
        if code == C.CMD_CLOSE:
            return _stop_nb(state, C.CLOSE_SIGNAL, actions)
        closer = forced_close_trigger_nb(code)
        if closer >= 0:
            return _stop_nb(state, closer, actions)
        if code == C.CMD_PAUSE:
            if s == C.ACTIVE or s == C.WAITING:
                H.transition_nb(state, C.PAUSED, C.USER_PAUSE)
            return 0
        if code == C.CMD_RESUME:
            if s == C.PAUSED:
                return _resume_nb(params, state, event, actions, C.USER_RESUME)
            return 0
        if code == C.CMD_START and s == C.WAITING and int(params[P_START]) == START_MANUAL:
            return _activate_nb(
                params, state, event[K.E_TIME], event[K.E_PRICE], C.START_CONDITION_MET, actions
            )
        return 0
    # EV_STOP (the data ended): the bot keeps its state; the venue cancels what rests.
    return 0


class Twap(BotStrategy):
    """TWAP execution bot (STRATEGIES.md §3.8; module docstring for the schedule).

    Choices where the spec is silent:

    * The arrival price is the mark at activation (the close of the first bar, E_PRICE of
      EV_START, for an immediate start); slippage is ``(VWAP/arrival − 1)·1e4`` bps, positive
      when the execution is worse than arrival (BUY above it, SELL below it).
    * Slice 0 is sent at activation; the timer for slice k is due at ``start + k·frequency``
      (start = E_TIME of the activating event). A slice is decided at the mark of its due time:
      the simulator's timer events carry no mark, so with a price limit the decision is taken
      at the bar event of the same bar (its close), hence ``wants_bars``.
    * Best and worst slice price are the best and worst fill prices (a market IOC slice fills
      at one price in the simulator). Best means lowest for BUY, highest for SELL.
    * A slice below the venue minimums is not sent (``slices_skipped_min``); a slice sent but
      not filled (rejected, IOC expired) counts in ``slices_unfilled``; both leave the quantity
      in ``remaining``.
    * Insufficient funds (STRATEGIES.md §4 and §5 item 11, the shared rule of
      :mod:`tradetower.bots.funds`): a slice refused for funds with nothing filled pauses the
      run (``insufficient_funds``, once per episode) and arms balance polls at 0, 15, 30, 60,
      120 and 300 s, on timer tags of that episode's own (a poll an earlier episode left behind
      is ignored). A poll resumes (``funds_available``) when the refused slice would pass:
      spot BUY, free quote ≥ qty·last mark·(1 + taker fee); spot SELL, base not held by slices
      out ≥ qty; margin, the position it leaves fits the equity at the leverage. The refused
      slice is then re-placed (its quantity, capped by what remains; price limit and minimums
      apply, decided at the bar's close when a limit needs the mark). After the 300 s poll
      fails the run stays PAUSED (``funds_warning``, logged) until a user resume, which also
      re-places it; a TWAP has no add funds. Slices that fall due while paused are missed like
      any paused slice (``slices_missed``), their quantity re-spread, with no catch-up. The
      refused slice counts in ``slices_unfilled`` until it is re-placed, then by that decision;
      while it is owed the run does not complete. A slice cut short by funds after a partial
      fill does not pause: its remainder stays in ``remaining``. Funds figures are in
      :meth:`Twap.funds_metrics`.
    * reduce_only: each slice is capped by the position left to reduce less the slices still
      out; when nothing is left to reduce the run completes early.
    * PAUSED skips the slices that fall due (``slices_missed``, no catch-up); a user stop
      (CMD_STOP, CLOSE or kill switch) cancels the slice out and ends STOPPED. The end of the
      data leaves the state as it is (a run cut short stays ACTIVE with ``fill_ratio < 1``).
    """

    name = "twap"
    Config: ClassVar[type[TwapConfig]] = TwapConfig
    kernel = twap_on_event_nb
    wants_bars: ClassVar[bool] = True

    def __init__(
        self,
        config: TwapConfig | None = None,
        *,
        commands: Mapping[int, int] | None = None,
        **fields: Any,
    ) -> None:
        super().__init__()
        self.config = config if config is not None else TwapConfig.parse(fields)
        self.commands = dict(commands or {})

    @property
    def params(self) -> np.ndarray:
        c = self.config
        p = np.zeros(N_PARAMS)
        p[P_DIR] = 1.0 if c.direction == TwapDirection.BUY else -1.0
        p[P_TOTAL] = c.total_amount
        p[P_N_SLICES] = c.n_slices
        p[P_FREQ_MS] = c.frequency * 1000.0
        p[P_REDUCE] = 1.0 if c.reduce_only else 0.0
        p[P_LIMIT] = np.nan if c.price_limit is None else c.price_limit
        p[P_START] = {
            TwapStartCondition.IMMEDIATELY: START_IMMEDIATELY,
            TwapStartCondition.MANUAL: START_MANUAL,
            TwapStartCondition.TRIGGER_PRICE: START_TRIGGER,
        }[c.start_condition]
        p[P_TRIGGER] = np.nan if c.trigger_price is None else c.trigger_price
        return p

    def initial_state(self, data: MarketData) -> np.ndarray:
        state = H.new_state(N_FIELDS)
        state[H.H_INVESTMENT] = self.config.total_amount
        state[S_N_SLICES] = self.config.n_slices
        state[S_FUNDS_RESUMED_T] = -1.0  # no resume by a poll yet
        return state

    def check(self, instruments: dict[str, Instrument]) -> None:
        """Validate against the venue and copy its rounding rules into the state."""
        inst = next(iter(instruments.values()))
        c = self.config
        if (c.leverage is not None or c.margin_type is not None) and not inst.is_margin:
            field = "leverage" if c.leverage is not None else "margin_type"
            raise ConfigError(field, f"{field}: futures only; {inst.symbol} is a spot instrument")
        if c.leverage is not None and c.leverage != inst.leverage:
            raise ConfigError(
                "leverage",
                f"leverage ({c.leverage}) must match the instrument's ({inst.leverage})",
            )
        first = inst.floor_qty(c.total_amount / c.n_slices)
        if first <= 0 or first < inst.min_qty:
            raise ConfigError(
                "total_amount",
                f"total_amount ({c.total_amount}) over {c.n_slices} slices gives {first} per "
                f"slice, below the venue minimum ({max(inst.lot, inst.min_qty)})",
            )
        if self.state.size:
            self.state[S_LOT] = inst.lot
            self.state[S_LOT_DEC] = inst.decimals(inst.lot) if inst.lot > 0 else 12
            self.state[S_MIN_QTY] = inst.min_qty
            self.state[S_MIN_NOTIONAL] = inst.min_notional
            self.state[S_TAKER] = inst.taker_fee
            self.state[S_MARGIN] = 1.0 if inst.is_margin else 0.0
            self.state[S_LEVERAGE] = inst.leverage

    def signals(self, data: MarketData) -> np.ndarray | None:
        if not self.commands:
            return None
        out = np.zeros(data.n_bars, dtype=np.int64)
        for bar, code in self.commands.items():
            out[bar] = code
        return out

    def metrics(self) -> dict[str, Any]:
        if not self.state.size:
            return {}
        s = self.state
        c = self.config
        direction = 1.0 if c.direction == TwapDirection.BUY else -1.0
        qty = float(s[S_EXEC_QTY])
        vwap = float(s[S_NOTIONAL]) / qty if qty > 0 else float("nan")
        arrival = float(s[S_ARRIVAL])
        slippage = (
            (vwap / arrival - 1.0) * 1e4 * direction if qty > 0 and arrival > 0 else float("nan")
        )
        out = self.bot_metrics()
        out.update(
            {
                "vwap": vwap,
                "arrival_price": arrival if arrival > 0 else float("nan"),
                "slippage_bps": slippage,
                "best_price": float(s[S_BEST]) if qty > 0 else float("nan"),
                "worst_price": float(s[S_WORST]) if qty > 0 else float("nan"),
                "executed_qty": qty,
                "notional": float(s[S_NOTIONAL]),
                "remaining_qty": float(s[S_REMAINING]) if s[S_ACTIVATED] else c.total_amount,
                "fill_ratio": qty / c.total_amount,
                "slices_total": c.n_slices,
                "slices_executed": int(s[S_N_EXEC]),
                "slices_skipped": int(s[S_N_SKIPPED]),
                "slices_skipped_min": int(s[S_N_SKIPPED_MIN]),
                "slices_unfilled": int(s[S_N_UNFILLED]),
                "slices_missed": int(s[S_N_MISSED]),
                "funds_pauses": int(s[S_FUNDS_PAUSES]),
                "twap_fees": float(s[H.H_FEES]),
                "error_no_position": bool(s[S_ERROR] == ERR_NO_POSITION),
            }
        )
        if s[S_FUNDS_WARN] > 0 and self.lifecycle_state.value == "PAUSED":
            logger.warning("twap: still paused for funds after the last balance poll")
        return out

    def funds_metrics(self) -> dict[str, Any]:
        """Insufficient-funds figures: pauses so far, whether an episode ended in the WARNING
        (its 300 s poll failed, or a refusal came right after a poll resumed it: only a user
        resume goes on), and the refused quantity still owed a re-placement."""
        if not self.state.size:
            return {}
        s = self.state
        return {
            "funds_pauses": int(s[S_FUNDS_PAUSES]),
            "funds_warning": bool(s[S_FUNDS_WARN] > 0),
            "funds_owed_qty": float(s[S_RETRY_QTY]),
        }
