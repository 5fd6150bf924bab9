"""Combo bot (STRATEGIES.md §3.5): futures DCA entries with grid exits. LONG shown, SHORT mirrored.

A market (or limit) base order opens the cycle. Below it (LONG) a DCA ladder of resting limits
waits, laid as in DCA: ``a_i = A·m^i/Σm^j`` of margin at ``P0(1−step·(i+1))``, down to
``low_price``. After every entry fill the exits are re-laid: ``n_g'`` reduce-only limits at
``tick(avg(1+g)^j)``, j = 1..n_g, keeping the levels ≤ ``high_price`` (at least one), each
``floor_lot(pos/n_g')`` with the top one taking the remainder. Each exit fill realizes its share at
average cost; with ``trail_dca_up`` the lowest DCA moves up to ``tick(X(1−step))``. When the
lowest DCA fills and ``extend_dca_on_fill`` is set, one more DCA with the same margin goes one step
lower, while the committed margin stays ≤ ``max_margin_multiple``·initial margin. When the exits
have sold the whole position, the DCA orders are cancelled and a new cycle starts at market.

The stop loss always trails: ``SL0 = stop_loss_price`` or ``P0(1−sl)``, and the level is
``max(SL, peak·SL0/P0)`` (the venue's trailing trigger with reference P0 and distance 1−SL0/P0).
TP (ROI on margin, or a price) → COMPLETED; SL, the liquidation buffer (a cross trigger at
``liq/(1−b)``, ``liq = avg(1−0.9/L)``, re-armed after every fill) or a liquidation → STOPPED;
all close the position with a reduce-only market order (CLOSE_TO_QUOTE).
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar, Literal

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
from tradetower.domain.instrument import Instrument, _decimals
from tradetower.errors import ConfigError
from tradetower.jit_options import NO_NRT, kernel_jit
from tradetower.kernel_signature import KERNEL_SIGNATURE
from tradetower.kernel_tools import (
    arm_cross_nb,
    arm_trailing_nb,
    cancel_all_nb,
    cancel_tag_nb,
    disarm_tag_nb,
    floor_qty_nb,
    place_nb,
    round_price_nb,
)
from tradetower.lifecycle import Trigger

logger = logging.getLogger(__name__)

LIQ_FRACTION = 0.9  # liq = avg(1 ∓ 0.9/L): STRATEGIES.md §3.3
SETUP_FAILED = C.TRIGGER_CODE[Trigger.SETUP_FAILED]

# ------------------------------------------------------------------------------ params layout
P_DIR = 0
P_LEV = 1
P_BASE = 2
P_A = 3
P_N = 4
P_STEP = 5  # fraction
P_MULT = 6
P_GSTEP = 7  # fraction
P_NG = 8
P_LOW = 9  # NaN: P·0.9
P_HIGH = 10  # NaN: P·1.1
P_TP_TYPE = 11
P_TP = 12  # fraction (PERCENT) or price
P_SL_TYPE = 13
P_SL = 14  # fraction (PERCENT) or price
P_BUFFER = 15  # fraction
P_EXTEND = 16
P_TRAIL = 17
P_MAX_MULT = 18
P_BASE_LIMIT = 19
P_COND = 20
P_CHANGE = 21  # signed fraction
P_CLOSURE = 22
P_ADD = 23
P_TICK = 24
P_TICK_DEC = 25
P_LOT = 26
P_LOT_DEC = 27
P_MIN_QTY = 28
P_MIN_NOTIONAL = 29
P_TAKER = 30
P_N_SLOTS = 31
N_PARAMS = 32

TP_OFF = 0
TP_PCT = 1
TP_PRICE = 2
SL_PCT = 1
SL_PRICE = 2

COND_IMMEDIATELY = 0
COND_PRICE_CHANGE = 1
COND_MANUAL = 2
COND_SIGNAL = 3

CL_CLOSE_TO_QUOTE = 0
CL_CANCEL_ORDERS = 1
CL_NONE = 2
CL_LIQUIDATE = 3

# ------------------------------------------------------------------------------- state layout
_B = H.BOT_START
F_PHASE = _B + 0
F_POS = _B + 1  # bot position, absolute base quantity
F_AVG = _B + 2
F_OPEN_FEES = _B + 3  # entry fees not yet realized
F_P0 = _B + 4
F_SL0 = _B + 5
F_SL_RATIO = _B + 6  # SL0/P0
F_SL_LEVEL = _B + 7
F_PEAK = _B + 8  # peak (SHORT: trough) seen since the base fill
F_LAST = _B + 9  # last price seen
F_LOW = _B + 10
F_HIGH = _B + 11
F_START_PRICE = _B + 12
F_BASE_MARGIN = _B + 13
F_A_TOTAL = _B + 14
F_BASE_FILLED = _B + 15
F_BASE_NOTIONAL = _B + 16
F_EXIT_FILLS = _B + 17
F_DCA_FILLS = _B + 18
F_EXTENSIONS = _B + 19
F_MOVES = _B + 20
F_SKIPPED_MIN = _B + 21
F_COMMITTED_AT_EXT = _B + 22
F_MAX_COMMITTED = _B + 23
F_CYCLE_REALIZED = _B + 24
F_WINS = _B + 25
F_CYCLE_START_MS = _B + 26
F_CYCLE_MS_SUM = _B + 27
F_FIRST_MS = _B + 28
F_DCA_PLACED = _B + 29
F_FUNDS_EPISODE = _B + 30  # > 0 while paused for funds with polls pending (1 + polls owed)
F_FUNDS_PAUSES = F_FUNDS_EPISODE + FD_PAUSES  # pauses for funds so far
F_FUNDS_WARN = F_FUNDS_EPISODE + FD_WARN  # still paused for funds after the last poll: WARNING
F_FUNDS_RESUMED_T = _B + 33  # time of the last resume by a poll
F_BASE_FAILED = _B + 34
F_BASE_REF = _B + 35
F_DIRTY = _B + 36  # an entry filled partially: re-lay the exits on completion or cancel
F_ADDED_FUNDS = _B + 37
F_DUST = _B + 38
F_LIQ_PRICE = _B + 39
F_TP_PRICE = _B + 40
F_LIQUIDATED = _B + 41
F_MAX_EXIT_EXCESS = _B + 42
F_EXIT_LEVELS = _B + 43
F_LAST_MS = _B + 44
F_COMMITTED = _B + 45
N_FIELDS = 64

SLOT0 = _B + N_FIELDS
SLOT_W = 7
DS_TAG = 0
DS_PRICE = 1
DS_MARGIN = 2  # margin of the unfilled part
DS_FULL = 3  # the order's full margin (an extension copies it)
DS_QTY = 4
DS_FILLED = 5
DS_STATUS = 6  # 0 free, 1 resting, 2 refused for funds (re-placed on resume)

PH_IDLE = 0
PH_BASE = 1
PH_CYCLE = 2
PH_CLOSING = 3
PH_DONE = 4

TAG_BASE = 1.0
TAG_EXIT = 2.0
TAG_CLOSE = 3.0
TAG_DCA0 = 1000.0  # DCA order tags: 1000 + sequence number (unique per order)
TRG_SL = 10.0
TRG_LIQ = 11.0
TRG_TP = 12.0
TRG_START = 13.0
TAG_POLL0 = 100.0  # poll timers: 100 + 6·(funds pauses before the episode) + j, j = 0..5

EPS = 1e-9


# --------------------------------------------------------------------------- numeric helpers
@kernel_jit
def _tick_nb(price: float, p: np.ndarray) -> float:
    tick = p[P_TICK]
    if tick <= 0.0:
        return price
    return round_price_nb(price, tick, p[P_TICK_DEC])


@kernel_jit
def _lot_nb(qty: float, p: np.ndarray) -> float:
    lot = p[P_LOT]
    if lot <= 0.0:
        return qty
    return floor_qty_nb(qty, lot, p[P_LOT_DEC])


@kernel_jit
def _clean_nb(qty: float, p: np.ndarray) -> float:
    """A sum of lot multiples, rid of float noise."""
    lot = p[P_LOT]
    if lot <= 0.0:
        return 0.0 if abs(qty) < 1e-12 else qty
    return round(np.floor(qty / lot + 0.5) * lot, int(p[P_LOT_DEC]))


@kernel_jit
def _meets_min_nb(qty: float, price: float, p: np.ndarray) -> bool:
    return qty > 0.0 and qty >= p[P_MIN_QTY] and qty * price >= p[P_MIN_NOTIONAL] - 1e-12


@kernel_jit
def _seq_nb(s: np.ndarray) -> float:
    q = s[H.H_SEQ]
    s[H.H_SEQ] = q + 1.0
    return q


# ------------------------------------------------------------------------------ DCA slots
@kernel_jit
def _free_slot_nb(p: np.ndarray, s: np.ndarray) -> int:
    for k in range(int(p[P_N_SLOTS])):
        if s[SLOT0 + k * SLOT_W + DS_STATUS] == 0.0:
            return k
    return -1


@kernel_jit
def _slot_by_tag_nb(p: np.ndarray, s: np.ndarray, tag: float) -> int:
    for k in range(int(p[P_N_SLOTS])):
        b = SLOT0 + k * SLOT_W
        if s[b + DS_STATUS] != 0.0 and s[b + DS_TAG] == tag:
            return k
    return -1


@kernel_jit
def _lowest_slot_nb(p: np.ndarray, s: np.ndarray, status: float) -> int:
    """The resting DCA farthest from the price (LONG: lowest, SHORT: highest); -1 if none."""
    d = p[P_DIR]
    best = -1
    best_px = 0.0
    for k in range(int(p[P_N_SLOTS])):
        b = SLOT0 + k * SLOT_W
        if s[b + DS_STATUS] != status:
            continue
        px = s[b + DS_PRICE]
        if best < 0 or (d > 0 and px < best_px) or (d < 0 and px > best_px):
            best = k
            best_px = px
    return best


@kernel_jit
def _free_all_slots_nb(p: np.ndarray, s: np.ndarray) -> None:
    for k in range(int(p[P_N_SLOTS])):
        s[SLOT0 + k * SLOT_W + DS_STATUS] = 0.0


@kernel_jit
def _committed_nb(p: np.ndarray, s: np.ndarray) -> float:
    """Margin of the open position at cost plus that of every pending DCA order."""
    c = s[F_POS] * s[F_AVG] / p[P_LEV]
    for k in range(int(p[P_N_SLOTS])):
        b = SLOT0 + k * SLOT_W
        if s[b + DS_STATUS] != 0.0:
            c += s[b + DS_MARGIN]
    return c


@kernel_jit
def _place_dca_nb(
    p: np.ndarray,
    s: np.ndarray,
    actions: np.ndarray,
    n: int,
    k: int,
    price: float,
    margin: float,
    full: float,
    new: bool,
) -> int:
    """Place a DCA limit of ``margin`` at ``price`` into slot ``k``."""
    b = SLOT0 + k * SLOT_W
    qty = _lot_nb(margin * p[P_LEV] / price, p)
    if not _meets_min_nb(qty, price, p) or n >= actions.shape[0]:
        s[F_SKIPPED_MIN] += 1.0
        s[b + DS_STATUS] = 0.0
        return n
    tag = TAG_DCA0 + _seq_nb(s)
    n = place_nb(actions, n, 0, p[P_DIR], K.LIMIT, price, qty, tag, False, False)
    s[b + DS_TAG] = tag
    s[b + DS_PRICE] = price
    s[b + DS_MARGIN] = margin
    s[b + DS_FULL] = full
    s[b + DS_QTY] = qty
    s[b + DS_FILLED] = 0.0
    s[b + DS_STATUS] = 1.0
    if new:
        s[F_DCA_PLACED] += 1.0
    return n


# ------------------------------------------------------------------------------ bookkeeping
@kernel_jit
def _book_entry_nb(p: np.ndarray, s: np.ndarray, qty: float, price: float, fee: float) -> None:
    pos = s[F_POS]
    new = _clean_nb(pos + qty, p)
    if new > 0.0:
        s[F_AVG] = (pos * s[F_AVG] + qty * price) / new
    s[F_POS] = new
    s[F_OPEN_FEES] += fee


@kernel_jit
def _book_exit_nb(p: np.ndarray, s: np.ndarray, qty: float, price: float, fee: float) -> None:
    """Realize a reducing fill at average cost: qty·(exit−avg)·dir − fee − entry fees' share."""
    pos = s[F_POS]
    q = min(qty, pos)
    share = s[F_OPEN_FEES] * q / pos if pos > 0.0 else 0.0
    r = q * (price - s[F_AVG]) * p[P_DIR] - fee - share
    s[F_OPEN_FEES] -= share
    new = _clean_nb(pos - q, p)
    if new <= 0.0:
        new = 0.0
        s[F_OPEN_FEES] = 0.0
        s[F_AVG] = 0.0
    s[F_POS] = new
    s[H.H_REALIZED] += r
    s[F_CYCLE_REALIZED] += r


@kernel_jit
def _end_cycle_nb(s: np.ndarray, now: float) -> None:
    s[H.H_CYCLES] += 1.0
    if s[F_CYCLE_REALIZED] > 0.0:
        s[F_WINS] += 1.0
    s[F_CYCLE_MS_SUM] += now - s[F_CYCLE_START_MS]
    s[F_CYCLE_REALIZED] = 0.0


# --------------------------------------------------------------------------------- orders
@kernel_jit
def _relay_exits_nb(p: np.ndarray, s: np.ndarray, actions: np.ndarray, n: int) -> int:
    """Cancel the exits and lay n_g' reduce-only exits at tick(avg(1±g)^j) for the position."""
    n = cancel_tag_nb(actions, n, 0, TAG_EXIT)
    s[F_DIRTY] = 0.0
    pos = s[F_POS]
    if pos <= 0.0:
        return n
    d = p[P_DIR]
    avg = s[F_AVG]
    g = p[P_GSTEP]
    ng = 0
    for j in range(1, int(p[P_NG]) + 1):
        px = _tick_nb(avg * (1.0 + d * g) ** j, p)
        if (d > 0 and px <= s[F_HIGH] + EPS) or (d < 0 and px >= s[F_LOW] - EPS):
            ng = j
        else:
            break
    if ng < 1:
        ng = 1
    while ng > 1:  # fewer, larger exits when the smallest would miss the minimums
        q = _lot_nb(pos / ng, p)
        ok = q > 0.0
        for j in range(1, ng + 1):
            if ok and not _meets_min_nb(q, _tick_nb(avg * (1.0 + d * g) ** j, p), p):
                ok = False
        if ok:
            break
        ng -= 1
    q = _lot_nb(pos / ng, p)
    placed = 0.0
    for j in range(1, ng + 1):
        qty = q if j < ng else _clean_nb(pos - (ng - 1) * q, p)
        px = _tick_nb(avg * (1.0 + d * g) ** j, p)
        if not _meets_min_nb(qty, px, p) or n >= actions.shape[0]:
            s[F_SKIPPED_MIN] += 1.0
            continue
        n = place_nb(actions, n, 0, -d, K.LIMIT, px, qty, TAG_EXIT, False, True)
        _seq_nb(s)
        placed += qty
    s[F_EXIT_LEVELS] = ng
    s[F_DUST] = max(0.0, _clean_nb(pos - placed, p))
    s[F_MAX_EXIT_EXCESS] = max(s[F_MAX_EXIT_EXCESS], _clean_nb(placed - pos, p))
    return n


@kernel_jit
def _lay_ladder_nb(p: np.ndarray, s: np.ndarray, actions: np.ndarray, n: int) -> int:
    nn = int(p[P_N])
    if nn == 0:
        return n
    d = p[P_DIR]
    p0 = s[F_P0]
    m = p[P_MULT]
    weights = 0.0
    for j in range(nn):
        weights += m**j
    for i in range(nn):
        px = _tick_nb(p0 * (1.0 - d * p[P_STEP] * (i + 1)), p)
        if px <= 0.0 or (d > 0 and px < s[F_LOW] - EPS) or (d < 0 and px > s[F_HIGH] + EPS):
            break
        k = _free_slot_nb(p, s)
        if k < 0 or n + 4 > actions.shape[0]:
            break
        a = s[F_A_TOTAL] * m**i / weights
        n = _place_dca_nb(p, s, actions, n, k, px, a, a, True)
    return n


@kernel_jit
def _place_base_nb(
    p: np.ndarray, s: np.ndarray, actions: np.ndarray, n: int, ref: float, now: float
) -> int:
    limit = p[P_BASE_LIMIT] > 0
    qty = _lot_nb(s[F_BASE_MARGIN] * p[P_LEV] / ref, p)
    s[F_BASE_REF] = ref
    s[F_BASE_FAILED] = 0.0
    s[F_BASE_FILLED] = 0.0
    s[F_BASE_NOTIONAL] = 0.0
    s[F_CYCLE_START_MS] = now
    s[F_CYCLE_REALIZED] = 0.0
    if not _meets_min_nb(qty, ref, p):
        s[F_SKIPPED_MIN] += 1.0
        s[F_PHASE] = PH_IDLE
        return n
    if limit:
        n = place_nb(
            actions, n, 0, p[P_DIR], K.LIMIT, _tick_nb(ref, p), qty, TAG_BASE, False, False
        )
    else:
        n = place_nb(actions, n, 0, p[P_DIR], K.MARKET, np.nan, qty, TAG_BASE, False, False)
    _seq_nb(s)
    s[F_PHASE] = PH_BASE
    return n


@kernel_jit
def _arm_guards_nb(p: np.ndarray, s: np.ndarray, actions: np.ndarray, n: int) -> int:
    """Re-arm the liquidation-buffer trigger and the ROI take-profit after a fill."""
    d = p[P_DIR]
    pos = s[F_POS]
    n = disarm_tag_nb(actions, n, TRG_LIQ)
    if pos > 0.0:
        liq = s[F_AVG] * (1.0 - d * LIQ_FRACTION / p[P_LEV])
        s[F_LIQ_PRICE] = liq
        if d > 0:
            n = arm_cross_nb(actions, n, 0, liq / (1.0 - p[P_BUFFER]), False, TRG_LIQ)
        else:
            n = arm_cross_nb(actions, n, 0, liq / (1.0 + p[P_BUFFER]), True, TRG_LIQ)
    if p[P_TP_TYPE] == TP_PCT:
        n = disarm_tag_nb(actions, n, TRG_TP)
        if pos > 0.0:
            target = p[P_TP] * s[H.H_INVESTMENT]
            px = s[F_AVG] + d * (target - s[H.H_REALIZED] + s[F_OPEN_FEES]) / pos
            s[F_TP_PRICE] = px
            if px > 0.0:
                n = arm_cross_nb(actions, n, 0, px, d > 0, TRG_TP)
    return n


@kernel_jit
def _close_nb(
    p: np.ndarray, s: np.ndarray, actions: np.ndarray, n: int, trigger: int, mode: int
) -> int:
    """→ CLOSING: cancel (unless NONE), close the position (CLOSE_TO_QUOTE / LIQUIDATE), and
    finish at once when nothing is left to close."""
    if not H.transition_nb(s, C.CLOSING, trigger):
        return n
    s[F_PHASE] = PH_CLOSING
    n = disarm_tag_nb(actions, n, TRG_SL)
    n = disarm_tag_nb(actions, n, TRG_LIQ)
    n = disarm_tag_nb(actions, n, TRG_TP)
    n = disarm_tag_nb(actions, n, TRG_START)
    if mode != CL_NONE:
        n = cancel_all_nb(actions, n, 0)
        _free_all_slots_nb(p, s)
    pos = s[F_POS]
    if mode in (CL_CLOSE_TO_QUOTE, CL_LIQUIDATE) and pos > 0.0 and pos >= p[P_MIN_QTY]:
        n = place_nb(actions, n, 0, -p[P_DIR], K.MARKET, np.nan, pos, TAG_CLOSE, False, True)
        if mode == CL_LIQUIDATE and n <= actions.shape[0]:
            actions[n - 1, K.A_TIF] = K.IOC
        _seq_nb(s)
        return n
    if pos > 0.0 and mode in (CL_CLOSE_TO_QUOTE, CL_LIQUIDATE):
        s[F_DUST] = pos
    _finish_nb(s)
    return n


@kernel_jit
def _finish_nb(s: np.ndarray) -> None:
    H.finish_closing_nb(s)
    s[F_PHASE] = PH_DONE


@kernel_jit
def _start_cycle_if_running_nb(
    p: np.ndarray, s: np.ndarray, actions: np.ndarray, n: int, ref: float, now: float
) -> int:
    if H.is_running_nb(s) and ref > 0.0:
        return _place_base_nb(p, s, actions, n, ref, now)
    s[F_PHASE] = PH_IDLE
    return n


@kernel_jit
def _activate_nb(
    p: np.ndarray, s: np.ndarray, actions: np.ndarray, n: int, ref: float, now: float
) -> int:
    """The bot goes live: arm a price take-profit, place the first base order."""
    if p[P_TP_TYPE] == TP_PRICE:
        n = arm_cross_nb(actions, n, 0, p[P_TP], p[P_DIR] > 0, TRG_TP)
        s[F_TP_PRICE] = p[P_TP]
    return _place_base_nb(p, s, actions, n, ref, now)


@kernel_jit
def _base_complete_nb(p: np.ndarray, s: np.ndarray, actions: np.ndarray, n: int, now: float) -> int:
    """The base order is done: P0, the ladder, the exits, the trailing SL and the guards."""
    filled = s[F_BASE_FILLED]
    if filled <= 0.0:
        s[F_PHASE] = PH_IDLE
        return n
    d = p[P_DIR]
    p0 = s[F_BASE_NOTIONAL] / filled
    s[F_P0] = p0
    s[F_PHASE] = PH_CYCLE
    n = _lay_ladder_nb(p, s, actions, n)
    n = _relay_exits_nb(p, s, actions, n)
    sl0 = p[P_SL] if p[P_SL_TYPE] == SL_PRICE else p0 * (1.0 - d * p[P_SL])
    ratio = sl0 / p0
    s[F_SL0] = sl0
    s[F_SL_RATIO] = ratio
    s[F_SL_LEVEL] = sl0
    s[F_PEAK] = p0
    n = disarm_tag_nb(actions, n, TRG_SL)
    dist = 1.0 - ratio if d > 0 else ratio - 1.0
    if dist <= 0.0:
        return _close_nb(p, s, actions, n, C.STOP_LOSS_HIT, CL_CLOSE_TO_QUOTE)
    n = arm_trailing_nb(actions, n, 0, p0, dist, d > 0, TRG_SL)
    return _arm_guards_nb(p, s, actions, n)


@kernel_jit
def _on_flat_nb(
    p: np.ndarray, s: np.ndarray, actions: np.ndarray, n: int, ref: float, now: float
) -> int:
    """The exits sold the whole position: cancel the DCA orders, start the next cycle."""
    _end_cycle_nb(s, now)
    n = cancel_all_nb(actions, n, 0)
    _free_all_slots_nb(p, s)
    n = disarm_tag_nb(actions, n, TRG_SL)
    n = disarm_tag_nb(actions, n, TRG_LIQ)
    if p[P_TP_TYPE] == TP_PCT:
        n = disarm_tag_nb(actions, n, TRG_TP)
        if s[H.H_REALIZED] >= p[P_TP] * s[H.H_INVESTMENT]:
            return _close_nb(p, s, actions, n, C.TAKE_PROFIT_HIT, CL_CLOSE_TO_QUOTE)
    return _start_cycle_if_running_nb(p, s, actions, n, ref, now)


@kernel_jit
def _extend_nb(
    p: np.ndarray, s: np.ndarray, actions: np.ndarray, n: int, price: float, full: float
) -> int:
    """One DCA one step beyond the filled lowest one, same margin, within the margin cap."""
    d = p[P_DIR]
    px = _tick_nb(price * (1.0 - d * p[P_STEP]), p)
    if px <= 0.0 or (d > 0 and px < s[F_LOW] - EPS) or (d < 0 and px > s[F_HIGH] + EPS):
        return n
    committed = _committed_nb(p, s) + full
    if committed > p[P_MAX_MULT] * s[H.H_INVESTMENT] + 1e-9:
        return n
    k = _free_slot_nb(p, s)
    if k < 0:
        return n
    before = s[F_DCA_PLACED]
    n = _place_dca_nb(p, s, actions, n, k, px, full, full, True)
    if s[F_DCA_PLACED] > before:
        s[F_EXTENSIONS] += 1.0
        s[F_COMMITTED_AT_EXT] = committed
    return n


@kernel_jit
def _trail_nb(p: np.ndarray, s: np.ndarray, actions: np.ndarray, n: int, x: float) -> int:
    """An exit filled at x: move the farthest DCA to tick(x(1∓step)) if that is closer."""
    k = _lowest_slot_nb(p, s, 1.0)
    if k < 0:
        return n
    d = p[P_DIR]
    b = SLOT0 + k * SLOT_W
    old = s[b + DS_PRICE]
    px = _tick_nb(x * (1.0 - d * p[P_STEP]), p)
    if (d > 0 and px <= old + EPS) or (d < 0 and px >= old - EPS) or px <= 0.0:
        return n
    n = cancel_tag_nb(actions, n, 0, s[b + DS_TAG])
    if s[F_DIRTY] > 0:  # the moved order had filled in part: lay the exits for it
        n = _relay_exits_nb(p, s, actions, n)
    n = _place_dca_nb(p, s, actions, n, k, px, s[b + DS_MARGIN], s[b + DS_FULL], False)
    if s[b + DS_STATUS] == 1.0:
        s[F_MOVES] += 1.0
    return n


@kernel_jit
def _funds_pause_nb(s: np.ndarray, actions: np.ndarray, n: int, now: float) -> int:
    """An entry was refused for funds: PAUSED (once per episode) and the balance polls.

    Each episode tags its polls from its own base, so the polls still pending from an earlier
    episode (timers cannot be cancelled) are not taken for this one's."""
    tag_poll = new_episode_poll_tag_nb(s, F_FUNDS_EPISODE, TAG_POLL0)
    return funds_pause_nb(
        s, F_FUNDS_EPISODE, F_FUNDS_RESUMED_T, H.is_running_nb(s), now, actions, n, tag_poll
    )


@kernel_jit
def _paused_for_funds_nb(s: np.ndarray) -> bool:
    """PAUSED by a funds refusal (polls pending, or given up: only a resume or add funds helps)."""
    return int(s[H.H_STATE]) == C.PAUSED and (s[F_FUNDS_EPISODE] > 0 or s[F_FUNDS_WARN] > 0)


@kernel_jit
def _required_nb(p: np.ndarray, s: np.ndarray) -> float:
    need = s[F_BASE_MARGIN] if s[F_BASE_FAILED] > 0 else 0.0
    for k in range(int(p[P_N_SLOTS])):
        b = SLOT0 + k * SLOT_W
        if s[b + DS_STATUS] == 2.0:
            need += s[b + DS_MARGIN]
    return need * (1.0 + p[P_LEV] * p[P_TAKER])


@kernel_jit
def _funds_there_nb(p: np.ndarray, s: np.ndarray, ev: np.ndarray) -> bool:
    """Does the free margin (equity less the open position's margin) cover what was refused?"""
    free = ev[K.E_EQUITY] - s[F_POS] * s[F_LAST] / p[P_LEV]
    return bool(free >= _required_nb(p, s))


@kernel_jit
def _resume_nb(
    p: np.ndarray, s: np.ndarray, actions: np.ndarray, n: int, trigger: int, now: float
) -> int:
    """PAUSED → resume_to; re-place what funds refused; start a cycle if flat and idle."""
    if int(s[H.H_STATE]) != C.PAUSED:
        return n
    if not H.transition_nb(s, int(s[H.H_RESUME_TO]), trigger):
        return n
    s[F_FUNDS_EPISODE] = 0.0
    s[F_FUNDS_WARN] = 0.0
    if not H.is_running_nb(s):
        return n
    for k in range(int(p[P_N_SLOTS])):
        b = SLOT0 + k * SLOT_W
        if s[b + DS_STATUS] == 2.0:
            n = _place_dca_nb(
                p, s, actions, n, k, s[b + DS_PRICE], s[b + DS_MARGIN], s[b + DS_FULL], False
            )
    if s[F_PHASE] == PH_IDLE and s[F_POS] <= 0.0:
        ref = s[F_LAST] if s[F_LAST] > 0.0 else s[F_BASE_REF]
        n = _place_base_nb(p, s, actions, n, ref, now)
    return n


@kernel_jit
def _add_funds_nb(p: np.ndarray, s: np.ndarray, actions: np.ndarray, n: int, now: float) -> int:
    x = p[P_ADD]
    inv = s[H.H_INVESTMENT]
    if x <= 0.0 or inv <= 0.0:
        return n
    f = (inv + x) / inv
    s[F_BASE_MARGIN] *= f
    s[F_A_TOTAL] *= f
    s[H.H_INVESTMENT] = inv + x
    s[F_ADDED_FUNDS] += x
    for k in range(int(p[P_N_SLOTS])):
        b = SLOT0 + k * SLOT_W
        st = s[b + DS_STATUS]
        if st == 0.0:
            continue
        s[b + DS_MARGIN] *= f
        s[b + DS_FULL] *= f
        if st == 1.0 and n + 2 <= actions.shape[0]:
            n = cancel_tag_nb(actions, n, 0, s[b + DS_TAG])
            n = _place_dca_nb(
                p, s, actions, n, k, s[b + DS_PRICE], s[b + DS_MARGIN], s[b + DS_FULL], False
            )
    if s[F_DIRTY] > 0:
        n = _relay_exits_nb(p, s, actions, n)
    if s[F_PHASE] == PH_BASE and s[F_BASE_FILLED] <= 0.0:
        n = cancel_tag_nb(actions, n, 0, TAG_BASE)
        n = _place_base_nb(p, s, actions, n, s[F_BASE_REF], now)
    if _paused_for_funds_nb(s):
        n = _resume_nb(p, s, actions, n, C.FUNDS_AVAILABLE, now)
    return n


# ------------------------------------------------------------------------------ event handlers
@kernel_jit
def _on_start_nb(p: np.ndarray, s: np.ndarray, ev: np.ndarray, actions: np.ndarray) -> int:
    price = ev[K.E_PRICE]
    now = ev[K.E_TIME]
    s[F_START_PRICE] = price
    s[F_LAST] = price
    s[F_FIRST_MS] = now
    s[F_LAST_MS] = now
    s[F_LOW] = price * 0.9 if np.isnan(p[P_LOW]) else p[P_LOW]
    s[F_HIGH] = price * 1.1 if np.isnan(p[P_HIGH]) else p[P_HIGH]
    s[F_BASE_MARGIN] = p[P_BASE]
    s[F_A_TOTAL] = p[P_A]
    s[H.H_INVESTMENT] = p[P_BASE] + p[P_A]
    if not (s[F_LOW] < price < s[F_HIGH]):
        H.transition_nb(s, C.ERROR, SETUP_FAILED)
        return 0
    cond = int(p[P_COND])
    if cond == COND_IMMEDIATELY:
        H.transition_nb(s, C.ACTIVE, C.USER_START)
        return _activate_nb(p, s, actions, 0, price, now)
    H.transition_nb(s, C.WAITING, C.START_CONDITION_PENDING)
    if cond == COND_PRICE_CHANGE:
        chg = p[P_CHANGE]
        return arm_cross_nb(actions, 0, 0, price * (1.0 + chg), chg > 0, TRG_START)
    return 0


@kernel_jit
def _on_fill_nb(p: np.ndarray, s: np.ndarray, ev: np.ndarray, actions: np.ndarray) -> int:
    qty = ev[K.E_QTY]
    price = ev[K.E_PRICE]
    fee = ev[K.E_FEE]
    tag = ev[K.E_TAG]
    now = ev[K.E_TIME]
    done = ev[K.E_REMAINING] <= 0.0
    state = int(s[H.H_STATE])
    terminal = state == C.STOPPED or state == C.COMPLETED
    s[H.H_FEES] += fee
    n = 0
    if ev[K.E_CODE] == 1.0:  # the venue liquidated the position
        _book_exit_nb(p, s, qty, price, fee)
        s[F_POS] = 0.0
        s[F_LIQUIDATED] += 1.0
        if s[F_PHASE] == PH_CYCLE:
            _end_cycle_nb(s, now)
        if terminal:
            return 0
        if state == C.CLOSING:
            _finish_nb(s)
            return 0
        return _close_nb(p, s, actions, 0, C.LIQUIDATION_BUFFER, CL_CANCEL_ORDERS)
    if tag == TAG_CLOSE:
        _book_exit_nb(p, s, qty, price, fee)
        if (done or s[F_POS] <= 0.0) and state == C.CLOSING:
            if s[F_POS] <= 0.0:
                _end_cycle_nb(s, now)
            _finish_nb(s)
        return 0
    if tag == TAG_EXIT:
        _book_exit_nb(p, s, qty, price, fee)
        s[F_EXIT_FILLS] += 1.0
        if terminal or state == C.CLOSING:
            return 0
        if s[F_POS] <= 0.0:
            return _on_flat_nb(p, s, actions, 0, price, now)
        if done and p[P_TRAIL] > 0 and H.is_running_nb(s):
            n = _trail_nb(p, s, actions, n, price)
        return _arm_guards_nb(p, s, actions, n)
    if tag == TAG_BASE:
        _book_entry_nb(p, s, qty, price, fee)
        s[F_BASE_FILLED] += qty
        s[F_BASE_NOTIONAL] += qty * price
        if terminal or state == C.CLOSING:
            return 0
        if done:
            return _base_complete_nb(p, s, actions, 0, now)
        return 0
    if tag >= TAG_DCA0:
        _book_entry_nb(p, s, qty, price, fee)
        k = _slot_by_tag_nb(p, s, tag)
        slot_price = price
        full = 0.0
        if k >= 0:
            b = SLOT0 + k * SLOT_W
            slot_price = s[b + DS_PRICE]
            full = s[b + DS_FULL]
            oq = s[b + DS_QTY]
            s[b + DS_FILLED] += qty
            s[b + DS_MARGIN] = s[b + DS_MARGIN] * max(
                0.0, 1.0 - qty / (oq - s[b + DS_FILLED] + qty)
            )
            if done:
                s[b + DS_STATUS] = 0.0
        if terminal or state == C.CLOSING:
            return 0
        if not done:
            s[F_DIRTY] = 1.0
            return 0
        s[F_DCA_FILLS] += 1.0
        n = _relay_exits_nb(p, s, actions, n)
        if k >= 0 and p[P_EXTEND] > 0 and H.is_running_nb(s):
            lowest = True
            for j in range(int(p[P_N_SLOTS])):
                bj = SLOT0 + j * SLOT_W
                if s[bj + DS_STATUS] == 0.0:
                    continue
                pj = s[bj + DS_PRICE]
                if (p[P_DIR] > 0 and pj < slot_price) or (p[P_DIR] < 0 and pj > slot_price):
                    lowest = False
            if lowest:
                n = _extend_nb(p, s, actions, n, slot_price, full)
        return _arm_guards_nb(p, s, actions, n)
    return 0


@kernel_jit
def _on_cancel_nb(p: np.ndarray, s: np.ndarray, ev: np.ndarray, actions: np.ndarray) -> int:
    reason = int(ev[K.E_CODE])
    if reason == K.R_USER or reason == K.R_END:
        return 0  # our own cancels
    tag = ev[K.E_TAG]
    now = ev[K.E_TIME]
    state = int(s[H.H_STATE])
    if state == C.STOPPED or state == C.COMPLETED:
        return 0
    if reason == K.R_MIN_SIZE:
        s[F_SKIPPED_MIN] += 1.0
    if tag == TAG_CLOSE:
        if state != C.CLOSING:
            return 0
        pos = s[F_POS]
        if reason == K.R_IOC_UNFILLED and pos > 0.0 and pos >= p[P_MIN_QTY]:
            n = place_nb(actions, 0, 0, -p[P_DIR], K.MARKET, np.nan, pos, TAG_CLOSE, False, True)
            _seq_nb(s)
            return n
        if pos > 0.0 and reason != K.R_REDUCE_ONLY:
            s[F_DUST] = pos
        _finish_nb(s)
        return 0
    if state == C.CLOSING:
        return 0
    funds = reason == K.R_INSUFFICIENT_FUNDS
    if tag == TAG_BASE:
        if s[F_BASE_FILLED] > 0.0:
            return _base_complete_nb(p, s, actions, 0, now)
        s[F_PHASE] = PH_IDLE
        if funds:
            s[F_BASE_FAILED] = 1.0
            return _funds_pause_nb(s, actions, 0, now)
        return 0
    if tag >= TAG_DCA0:
        k = _slot_by_tag_nb(p, s, tag)
        if k < 0:
            return 0
        b = SLOT0 + k * SLOT_W
        n = 0
        if s[b + DS_FILLED] > 0.0 or s[F_DIRTY] > 0:
            n = _relay_exits_nb(p, s, actions, n)
            n = _arm_guards_nb(p, s, actions, n)
        if funds:
            s[b + DS_STATUS] = 2.0
            return _funds_pause_nb(s, actions, n, now)
        s[b + DS_STATUS] = 0.0
        return n
    return 0  # exits: reduce-only, liquidated or below the minimums; re-laid on the next entry


@kernel_jit
def _on_trigger_nb(p: np.ndarray, s: np.ndarray, ev: np.ndarray, actions: np.ndarray) -> int:
    tag = ev[K.E_TAG]
    state = int(s[H.H_STATE])
    if state == C.STOPPED or state == C.COMPLETED or state == C.CLOSING:
        return 0
    if tag == TRG_START:
        if state == C.WAITING and H.transition_nb(s, C.ACTIVE, C.START_CONDITION_MET):
            return _activate_nb(p, s, actions, 0, ev[K.E_PRICE], ev[K.E_TIME])
        return 0
    if tag == TRG_SL:
        s[F_SL_LEVEL] = ev[K.E_PRICE]
        return _close_nb(p, s, actions, 0, C.STOP_LOSS_HIT, CL_CLOSE_TO_QUOTE)
    if tag == TRG_LIQ:
        return _close_nb(p, s, actions, 0, C.LIQUIDATION_BUFFER, CL_CLOSE_TO_QUOTE)
    if tag == TRG_TP:
        return _close_nb(p, s, actions, 0, C.TAKE_PROFIT_HIT, CL_CLOSE_TO_QUOTE)
    return 0


@kernel_jit
def _on_timer_nb(p: np.ndarray, s: np.ndarray, ev: np.ndarray, actions: np.ndarray) -> int:
    tag_poll = episode_poll_tag_nb(s, F_FUNDS_EPISODE, TAG_POLL0)
    if not is_funds_poll_nb(s, F_FUNDS_EPISODE, ev, tag_poll):
        return 0
    there = _funds_there_nb(p, s, ev)
    outcome = funds_poll_nb(s, F_FUNDS_EPISODE, F_FUNDS_RESUMED_T, ev, tag_poll, there)
    if outcome == POLL_RESUME:
        return _resume_nb(p, s, actions, 0, C.FUNDS_AVAILABLE, ev[K.E_TIME])
    if outcome == POLL_WAIT:  # the polls the pause had no action rows for go out now
        return funds_arm_owed_nb(s, F_FUNDS_EPISODE, ev, tag_poll, actions, 0)
    return 0  # after the failed 300 s poll: PAUSED until a resume or add funds


@kernel_jit
def _on_signal_nb(p: np.ndarray, s: np.ndarray, ev: np.ndarray, actions: np.ndarray) -> int:
    code = int(ev[K.E_CODE])
    state = int(s[H.H_STATE])
    now = ev[K.E_TIME]
    if state == C.STOPPED or state == C.COMPLETED or state == C.CLOSING:
        return 0
    if state == C.INITIALIZING or (state == C.ERROR and code != C.CMD_STOP and code != C.CMD_KILL):
        return 0
    cond = int(p[P_COND])
    if state == C.WAITING and (
        (code == C.CMD_START and cond == COND_MANUAL)
        or (cond == COND_SIGNAL and code == int(p[P_DIR]))
    ):
        if H.transition_nb(s, C.ACTIVE, C.START_CONDITION_MET):
            return _activate_nb(p, s, actions, 0, ev[K.E_PRICE], now)
        return 0
    if code == C.CMD_CLOSE:
        return _close_nb(p, s, actions, 0, C.CLOSE_SIGNAL, CL_CLOSE_TO_QUOTE)
    if code == C.CMD_STOP:
        return _close_nb(p, s, actions, 0, C.USER_STOP, int(p[P_CLOSURE]))
    closer = forced_close_trigger_nb(code)
    if closer >= 0:
        return _close_nb(p, s, actions, 0, closer, CL_CLOSE_TO_QUOTE)
    if code == C.CMD_PAUSE:
        H.transition_nb(s, C.PAUSED, C.USER_PAUSE)
        return 0
    if code == C.CMD_RESUME:
        return _resume_nb(p, s, actions, 0, C.USER_RESUME, now)
    if code == C.CMD_ADD_FUNDS:
        return _add_funds_nb(p, s, actions, 0, now)
    return 0  # any other signal outside WAITING is ignored (§1)


@njit(KERNEL_SIGNATURE, cache=True, **NO_NRT)
def combo_on_event_nb(params, state, event, actions):  # type: ignore[no-untyped-def]
    p = params
    s = state
    et = int(event[K.E_TYPE])
    s[H.H_BAR] = event[K.E_BAR]
    s[H.H_TIME] = event[K.E_TIME]
    mark = event[K.E_MARK]
    if et == K.EV_FILL:
        mark = event[K.E_PRICE]
    if mark > 0.0 and et != K.EV_START:
        s[F_LAST] = mark
        s[F_LAST_MS] = event[K.E_TIME]
        if s[F_PHASE] == PH_CYCLE:
            if p[P_DIR] > 0:
                s[F_PEAK] = max(s[F_PEAK], mark)
                s[F_SL_LEVEL] = max(s[F_SL_LEVEL], s[F_PEAK] * s[F_SL_RATIO])
            else:
                s[F_PEAK] = min(s[F_PEAK], mark)
                s[F_SL_LEVEL] = min(s[F_SL_LEVEL], s[F_PEAK] * s[F_SL_RATIO])
    n = 0
    if et == K.EV_START:
        if int(s[H.H_STATE]) == C.INITIALIZING:
            n = _on_start_nb(p, s, event, actions)
    elif et == K.EV_FILL:
        n = _on_fill_nb(p, s, event, actions)
    elif et == K.EV_CANCEL:
        n = _on_cancel_nb(p, s, event, actions)
    elif et == K.EV_TRIGGER:
        n = _on_trigger_nb(p, s, event, actions)
    elif et == K.EV_TIMER:
        n = _on_timer_nb(p, s, event, actions)
    elif et == K.EV_SIGNAL:
        n = _on_signal_nb(p, s, event, actions)
    c = _committed_nb(p, s)
    s[F_COMMITTED] = c
    s[F_MAX_COMMITTED] = max(s[F_MAX_COMMITTED], c)
    return n


# ------------------------------------------------------------------------------------ config
def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.capitalize() for w in rest)


def _alias(name: str) -> AliasChoices:
    return AliasChoices(name, _camel(name))


Command = Literal["START", "CLOSE", "PAUSE", "RESUME", "STOP", "KILL", "ADD_FUNDS", "BUY", "SELL"]
COMMAND_CODES = {
    "START": C.CMD_START,
    "CLOSE": C.CMD_CLOSE,
    "PAUSE": C.CMD_PAUSE,
    "RESUME": C.CMD_RESUME,
    "STOP": C.CMD_STOP,
    "KILL": C.CMD_KILL,
    "ADD_FUNDS": C.CMD_ADD_FUNDS,
    "BUY": C.SIG_BUY,
    "SELL": C.SIG_SELL,
}


class ComboConfig(FrozenConfig):
    """Combo parameters (STRATEGIES.md §3.5). Amounts are margin in quote: notional = margin·L."""

    direction: Literal["LONG", "SHORT"] = Field(
        default="LONG", validation_alias=_alias("direction")
    )
    """LONG averages down below the price and exits above it; SHORT mirrors it."""
    leverage: float = Field(ge=1, le=125, validation_alias=_alias("leverage"))
    """x; must equal the instrument's leverage."""
    margin_type: Literal["ISOLATED", "CROSS"] = Field(
        default="ISOLATED", validation_alias=_alias("margin_type")
    )
    """Recorded only: the simulator margins the whole account."""
    initial_margin: float | None = Field(
        default=None, gt=0, validation_alias=_alias("initial_margin")
    )
    """quote: base_order_amount + averaging_orders_amount (give any two of the three)."""
    low_price: float | None = Field(default=None, gt=0, validation_alias=_alias("low_price"))
    """quote: bottom of the DCA zone (no DCA below it); default P·0.9."""
    high_price: float | None = Field(default=None, gt=0, validation_alias=_alias("high_price"))
    """quote: top of the exit zone (exit levels above it are dropped); default P·1.1."""
    base_order_amount: float | None = Field(
        default=None, gt=0, validation_alias=_alias("base_order_amount")
    )
    """quote margin of the base order."""
    base_order_type: Literal["MARKET", "LIMIT"] = Field(
        default="MARKET", validation_alias=_alias("base_order_type")
    )
    """MARKET (taker), or LIMIT at tick(P) (maker)."""
    base_order_condition: Literal[
        "IMMEDIATELY", "PRICE_CHANGE", "MANUAL", "INDICATOR", "TRADINGVIEW"
    ] = Field(default="IMMEDIATELY", validation_alias=_alias("base_order_condition"))
    """When the first cycle starts (later cycles start at market)."""
    start_price_change_pct: float | None = Field(
        default=None, ge=-99, le=1000, validation_alias=_alias("start_price_change_pct")
    )
    """%, signed: PRICE_CHANGE starts when the price moves this far from P."""
    averaging_orders_amount: float | None = Field(
        default=None, ge=0, validation_alias=_alias("averaging_orders_amount")
    )
    """quote margin: the total A of the DCA ladder."""
    averaging_orders_quantity: int = Field(
        ge=0, le=50, validation_alias=_alias("averaging_orders_quantity")
    )
    """n DCA orders."""
    averaging_orders_step: float = Field(
        ge=0.1, le=50, validation_alias=_alias("averaging_orders_step")
    )
    """%: DCA i sits at P0(1 − step·(i+1)); also the extension and trailing distance."""
    amount_multiplier: float = Field(
        default=1.0, ge=1.0, le=2.0, validation_alias=_alias("amount_multiplier")
    )
    """m: a_i = A·m^i/Σm^j."""
    grid_step: float | None = Field(
        default=None, ge=0.1, le=100, validation_alias=_alias("grid_step")
    )
    """% g between exits; default = averaging_orders_step."""
    grid_levels: int = Field(ge=1, le=100, validation_alias=_alias("grid_levels"))
    """n_g exits (levels above high_price are dropped, at least one kept)."""
    take_profit_pct: float | None = Field(
        default=None, gt=0, le=10_000, validation_alias=_alias("take_profit_pct")
    )
    """%: TP when the total PnL reaches this ROI on the margin invested (off by default)."""
    take_profit_price: float | None = Field(
        default=None, gt=0, validation_alias=_alias("take_profit_price")
    )
    """quote: TP when the price crosses it (off by default)."""
    stop_loss_pct: float | None = Field(
        default=None, gt=0, lt=100, validation_alias=_alias("stop_loss_pct")
    )
    """%: SL0 = P0(1 − sl), below the lowest DCA; always trailing."""
    stop_loss_price: float | None = Field(
        default=None, gt=0, validation_alias=_alias("stop_loss_price")
    )
    """quote: SL0 as a price, below the lowest DCA; always trailing."""
    liquidation_buffer: float = Field(
        default=10.0, ge=1, le=50, validation_alias=_alias("liquidation_buffer")
    )
    """%: stop when the price comes within this share of the liquidation price."""
    extend_dca_on_fill: bool = Field(default=True, validation_alias=_alias("extend_dca_on_fill"))
    """When the lowest DCA fills, add one a step lower (same margin) within the margin cap."""
    trail_dca_up: bool = Field(default=True, validation_alias=_alias("trail_dca_up"))
    """On an exit fill at X, move the lowest DCA up to X(1 − step)."""
    max_margin_multiple: float = Field(
        default=3.0, ge=1, le=1000, validation_alias=_alias("max_margin_multiple")
    )
    """x: extensions keep the committed margin ≤ this × the initial margin."""
    closure: Literal["CLOSE_TO_QUOTE", "CANCEL_ORDERS", "NONE", "LIQUIDATE"] = Field(
        default="CANCEL_ORDERS", validation_alias=_alias("closure")
    )
    """Exit mode of a user stop (CMD_STOP)."""
    add_funds_amount: float = Field(default=0.0, ge=0, validation_alias=_alias("add_funds_amount"))
    """quote margin added by each ADD_FUNDS command."""
    commands: dict[int, Command] = Field(default_factory=dict, validation_alias=_alias("commands"))
    """Backtests: commands (or BUY/SELL indicator signals) by bar index."""

    @model_validator(mode="after")
    def _rules(self) -> ComboConfig:
        given = [
            x is not None
            for x in (self.initial_margin, self.base_order_amount, self.averaging_orders_amount)
        ]
        if sum(given) < 2:
            raise ValueError(
                "base_order_amount: give two of initial_margin, base_order_amount and "
                "averaging_orders_amount"
            )
        if all(given):
            total = float(self.base_order_amount) + float(self.averaging_orders_amount)  # type: ignore[arg-type]
            if abs(float(self.initial_margin) - total) > 1e-9 * max(1.0, total):  # type: ignore[arg-type]
                raise ValueError(
                    f"initial_margin ({self.initial_margin}) must equal base_order_amount + "
                    f"averaging_orders_amount ({total})"
                )
        base, a = self.base_margin, self.averaging_margin
        if base <= 0:
            raise ValueError(f"base_order_amount must be > 0 (got {base})")
        if a < 0:
            raise ValueError(f"averaging_orders_amount must be ≥ 0 (got {a})")
        n = self.averaging_orders_quantity
        if n > 0 and a <= 0:
            raise ValueError(
                "averaging_orders_amount must be > 0 when averaging_orders_quantity > 0"
            )
        if n * self.averaging_orders_step >= 100:
            raise ValueError(
                f"averaging_orders_step ({self.averaging_orders_step}%) × "
                f"averaging_orders_quantity "
                f"({n}) must stay below 100%"
            )
        if (
            self.low_price is not None
            and self.high_price is not None
            and self.low_price >= self.high_price
        ):
            raise ValueError(
                f"low_price ({self.low_price}) must be below high_price ({self.high_price})"
            )
        if self.base_order_condition == "PRICE_CHANGE" and not self.start_price_change_pct:
            raise ValueError("start_price_change_pct: required (≠ 0) for PRICE_CHANGE")
        if self.take_profit_pct is not None and self.take_profit_price is not None:
            raise ValueError("take_profit_pct: give take_profit_pct or take_profit_price, not both")
        if (self.stop_loss_pct is None) == (self.stop_loss_price is None):
            raise ValueError("stop_loss_pct: give exactly one of stop_loss_pct and stop_loss_price")
        liq_dist = LIQ_FRACTION / self.leverage * 100
        if self.liquidation_buffer >= liq_dist:
            raise ValueError(
                f"liquidation_buffer ({self.liquidation_buffer}%) must be below the liquidation "
                f"distance at entry, 90/leverage = {liq_dist:.4g}% (else it stops the bot at once)"
            )
        if self.stop_loss_pct is not None:
            lowest = n * self.averaging_orders_step
            if self.stop_loss_pct <= lowest:
                raise ValueError(
                    f"stop_loss_pct ({self.stop_loss_pct}%) must lie below the lowest DCA "
                    f"({lowest:.4g}% from P0)"
                )
            sign = 1.0 if self.direction == "LONG" else -1.0
            liq = self.full_ladder_avg() * (1 - sign * LIQ_FRACTION / self.leverage)
            if sign * (1 - sign * self.stop_loss_pct / 100 - liq) <= 0:
                raise ValueError(
                    f"stop_loss_pct ({self.stop_loss_pct}%) must lie before the liquidation price "
                    f"of the fully averaged position ({abs(1 - liq) * 100:.4g}% from P0)"
                )
        return self

    @property
    def base_margin(self) -> float:
        if self.base_order_amount is not None:
            return float(self.base_order_amount)
        return float(self.initial_margin or 0.0) - float(self.averaging_orders_amount or 0.0)

    @property
    def averaging_margin(self) -> float:
        if self.averaging_orders_amount is not None:
            return float(self.averaging_orders_amount)
        return float(self.initial_margin or 0.0) - float(self.base_order_amount or 0.0)

    @property
    def investment(self) -> float:
        return self.base_margin + self.averaging_margin

    @property
    def effective_grid_step(self) -> float:
        return self.grid_step if self.grid_step is not None else self.averaging_orders_step

    def ladder(self, p0: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Unrounded DCA prices and margins for a base fill at ``p0`` (ignoring low_price)."""
        n = self.averaging_orders_quantity
        sign = 1.0 if self.direction == "LONG" else -1.0
        i = np.arange(n)
        prices = p0 * (1.0 - sign * self.averaging_orders_step / 100 * (i + 1))
        w = self.amount_multiplier**i
        margins = self.averaging_margin * w / w.sum() if n else np.zeros(0)
        return prices, margins

    def full_ladder_avg(self) -> float:
        """Average entry, as a multiple of P0, once the whole ladder has filled."""
        prices, margins = self.ladder(1.0)
        notional = self.base_margin + margins.sum()
        qty = self.base_margin + (margins / prices).sum()
        return float(notional / qty)


# ------------------------------------------------------------------------------------- bot
class Combo(BotStrategy):
    """The Combo bot (see the module docstring for the mechanics).

    Choices where the spec is silent or ambiguous (a trader's reading):

    - ``liquidation_buffer`` must be below the liquidation distance at entry, ``90/leverage`` %:
      otherwise its trigger ``liq/(1−b)`` sits above the entry and stops the bot at once. The spec's
      default (10 %) is therefore refused from 9x up; the C examples run with 5 %.
    - ``leverage`` must equal the instrument's leverage (the simulator has no ``set_leverage``).
    - "One step lower" for an extension is relative to the filled lowest DCA's own level (98 → 97.02
      in C2), using the DCA step; the extension is skipped below ``low_price``.
    - Committed margin = ``pos·avg/L`` (the open position at cost) + the margin of every DCA order
      still pending (C2: 99.99973 + 30).
    - A DCA moves (trail_dca_up) only upwards (SHORT: downwards); partially filled DCA orders move
      with their unfilled margin. Moves and extensions happen on *complete* fills only.
    - TP PERCENT is ROI on margin: total PnL (realized + unrealized, the latter net of the open
      entry fees, no close fee; §1) ≥ ``take_profit_pct``·investment. It becomes a price trigger
      recomputed after every fill; if the target is met while flat, the bot completes at once.
    - The SL peak restarts at every cycle's base fill. The ``sl_level`` metric is the level as the
      bot last saw it (the venue-side trailing trigger tracks the exact intrabar peak; when it
      fires, the metric takes the level it fired at).
    - Exactly one of ``stop_loss_pct`` / ``stop_loss_price`` is required (the table gives no
      default); the percentage must lie below the lowest DCA (``> n·step``) and above the
      liquidation price of the fully averaged position.
    - The start condition applies to the first cycle only; later cycles start at market as soon as
      the previous one is flat (§3.5). INDICATOR / TRADINGVIEW start on a +1 signal (SHORT: −1).
    - A user stop (``CMD_STOP``) uses ``closure`` (default CANCEL_ORDERS, §5.15); ``CMD_CLOSE`` and
      the kill switch close the position.
    - PAUSED (user or funds) keeps the resting orders and keeps booking fills and re-laying the
      exits (reducing orders still go out), but places no new entries: no extension, no DCA move, no
      new cycle.
    - Insufficient funds (§4, the shared rule of :mod:`tradetower.bots.funds`): an entry (base or
      DCA) refused for funds pauses the bot (``insufficient_funds``) once per episode and arms
      balance polls at 0, 15, 30, 60, 120 and 300 s. A poll where the free margin (equity less the
      open position's margin at the last price) covers the refused margin plus its taker fee
      resumes (``funds_available``) and re-places the refused orders at their prices. After the
      300 s poll fails the bot stays PAUSED with a WARNING (logged by ``metrics()``) until a user
      resume or add funds, which also re-place them. Refused again at the very time a poll resumed
      it, the bot pauses without new polls. Each episode tags its polls afresh, so polls left over
      from an earlier episode are ignored. Polls the pause had no action rows for
      (``max_actions``) are armed by the first poll that waits, on the same schedule.
    - Add funds: ``x`` = ``add_funds_amount`` per ``CMD_ADD_FUNDS`` signal; base and A scale by
      ``(I+x)/I``; the pending DCA orders are rescaled and replaced at the same prices; the exits
      are untouched; a base that has filled keeps its size until the next cycle.
    - Trailing moves do not pass through the TRAILING state (one transition pair per move would
      flood the transition log); there is no pump protection (§1: Grid and DCA Futures only).
    - ``margin_type`` is recorded only: the simulator margins the account as a whole.
    - Orders below the instrument minimums are skipped and counted (``skipped_min``); an exit
      remainder that cannot be placed is reported as ``dust``.
    """

    name = "combo"
    Config: ClassVar[type[ComboConfig]] = ComboConfig
    kernel = combo_on_event_nb

    def __init__(self, config: ComboConfig | None = None, **fields: Any) -> None:
        super().__init__()
        self.config = config if config is not None else ComboConfig.parse(fields)
        self._instrument: Instrument | None = None
        self._params: np.ndarray | None = None
        self._first_close = float("nan")
        self._last_close = float("nan")

    # --- sizing of the slot table ---
    def n_slots(self) -> int:
        c = self.config
        n = c.averaging_orders_quantity
        if n == 0:
            return 1
        _, margins = c.ladder()
        extra = math.ceil(c.max_margin_multiple * c.investment / float(margins.min())) + 2
        return int(min(n + extra, 4000))

    @property
    def params(self) -> np.ndarray:
        if self._params is None:
            self._params = self._build_params()
        return self._params

    def _build_params(self) -> np.ndarray:
        c = self.config
        inst = self._instrument or Instrument(symbol="X-PERP", margin=True, leverage=c.leverage)
        p = np.zeros(N_PARAMS)
        p[P_DIR] = 1.0 if c.direction == "LONG" else -1.0
        p[P_LEV] = c.leverage
        p[P_BASE] = c.base_margin
        p[P_A] = c.averaging_margin
        p[P_N] = c.averaging_orders_quantity
        p[P_STEP] = c.averaging_orders_step / 100
        p[P_MULT] = c.amount_multiplier
        p[P_GSTEP] = c.effective_grid_step / 100
        p[P_NG] = c.grid_levels
        p[P_LOW] = np.nan if c.low_price is None else c.low_price
        p[P_HIGH] = np.nan if c.high_price is None else c.high_price
        if c.take_profit_pct is not None:
            p[P_TP_TYPE], p[P_TP] = TP_PCT, c.take_profit_pct / 100
        elif c.take_profit_price is not None:
            p[P_TP_TYPE], p[P_TP] = TP_PRICE, c.take_profit_price
        if c.stop_loss_pct is not None:
            p[P_SL_TYPE], p[P_SL] = SL_PCT, c.stop_loss_pct / 100
        else:
            p[P_SL_TYPE], p[P_SL] = SL_PRICE, float(c.stop_loss_price or 0.0)
        p[P_BUFFER] = c.liquidation_buffer / 100
        p[P_EXTEND] = 1.0 if c.extend_dca_on_fill else 0.0
        p[P_TRAIL] = 1.0 if c.trail_dca_up else 0.0
        p[P_MAX_MULT] = c.max_margin_multiple
        p[P_BASE_LIMIT] = 1.0 if c.base_order_type == "LIMIT" else 0.0
        p[P_COND] = {
            "IMMEDIATELY": COND_IMMEDIATELY,
            "PRICE_CHANGE": COND_PRICE_CHANGE,
            "MANUAL": COND_MANUAL,
            "INDICATOR": COND_SIGNAL,
            "TRADINGVIEW": COND_SIGNAL,
        }[c.base_order_condition]
        p[P_CHANGE] = (c.start_price_change_pct or 0.0) / 100
        p[P_CLOSURE] = {
            "CLOSE_TO_QUOTE": CL_CLOSE_TO_QUOTE,
            "CANCEL_ORDERS": CL_CANCEL_ORDERS,
            "NONE": CL_NONE,
            "LIQUIDATE": CL_LIQUIDATE,
        }[c.closure]
        p[P_ADD] = c.add_funds_amount
        p[P_TICK] = inst.tick
        p[P_TICK_DEC] = _decimals(inst.tick)
        p[P_LOT] = inst.lot
        p[P_LOT_DEC] = _decimals(inst.lot)
        p[P_MIN_QTY] = inst.min_qty
        p[P_MIN_NOTIONAL] = inst.min_notional
        p[P_TAKER] = inst.taker_fee
        p[P_N_SLOTS] = self.n_slots()
        return p

    def initial_state(self, data: MarketData) -> np.ndarray:
        close = data.ohlcv[:, 0, 3]
        valid = close[~np.isnan(close)]
        if valid.size:
            self._first_close = float(valid[0])
            self._last_close = float(valid[-1])
        return H.new_state(N_FIELDS + SLOT_W * self.n_slots())

    def signals(self, data: MarketData) -> np.ndarray | None:
        if not self.config.commands:
            return None
        out = np.zeros(data.n_bars, dtype=np.int64)
        for bar, name in self.config.commands.items():
            if not 0 <= bar < data.n_bars:
                raise ConfigError(
                    "commands", f"commands: bar {bar} is outside the data (0..{data.n_bars - 1})"
                )
            out[bar] = COMMAND_CODES[name]
        return out

    def check(self, instruments: dict[str, Instrument]) -> None:
        """Venue rules the config alone cannot know: margin, leverage, minimums at P."""
        c = self.config
        inst = next(iter(instruments.values()))
        if not inst.is_margin:
            raise ConfigError(
                "instrument", f"combo trades futures: {inst.symbol} is not a margin instrument"
            )
        if abs(inst.leverage - c.leverage) > 1e-12:
            raise ConfigError(
                "leverage",
                f"leverage ({c.leverage}x) must equal the instrument's leverage ({inst.leverage}x)",
            )
        self._instrument = inst
        self._params = None
        price = self._first_close
        if not price > 0:
            return
        low = c.low_price if c.low_price is not None else price * 0.9
        high = c.high_price if c.high_price is not None else price * 1.1
        if c.base_order_condition == "IMMEDIATELY" and not low < price < high:
            raise ConfigError(
                "low_price", f"low_price ({low}) < P ({price}) < high_price ({high}) must hold"
            )
        lev = c.leverage
        base_qty = inst.floor_qty(c.base_margin * lev / price)
        if not self._meets_min(inst, base_qty, price):
            raise ConfigError(
                "base_order_amount",
                f"base_order_amount ({c.base_margin}) gives {base_qty} @ {price}, below the "
                f"instrument minimums",
            )
        prices, margins = c.ladder(price)
        for px, m in zip(prices.tolist(), margins.tolist(), strict=True):
            tp = inst.round_price(px)
            if tp <= 0 or tp < low or tp > high:
                continue
            if not self._meets_min(inst, inst.floor_qty(m * lev / tp), tp):
                raise ConfigError(
                    "averaging_orders_amount",
                    f"averaging_orders_amount: the DCA order of margin {m:.6g} @ {tp} is below "
                    f"the instrument minimums",
                )
        sign = 1.0 if c.direction == "LONG" else -1.0
        if c.stop_loss_price is not None:
            lowest = inst.round_price(float(prices[-1])) if len(prices) else price
            if sign * (c.stop_loss_price - lowest) >= 0:
                raise ConfigError(
                    "stop_loss_price",
                    f"stop_loss_price ({c.stop_loss_price}) must lie beyond the lowest DCA "
                    f"({lowest})",
                )
            liq = price * c.full_ladder_avg() * (1 - sign * LIQ_FRACTION / lev)
            if sign * (c.stop_loss_price - liq) <= 0:
                raise ConfigError(
                    "stop_loss_price",
                    f"stop_loss_price ({c.stop_loss_price}) must lie before the liquidation "
                    f"price of the fully averaged position ({liq:.6g})",
                )
        if c.take_profit_price is not None and sign * (c.take_profit_price - price) <= 0:
            raise ConfigError(
                "take_profit_price",
                f"take_profit_price ({c.take_profit_price}) must lie "
                f"{'above' if sign > 0 else 'below'} P ({price})",
            )

    @staticmethod
    def _meets_min(inst: Instrument, qty: float, price: float) -> bool:
        return qty > 0 and qty >= inst.min_qty and qty * price >= inst.min_notional - 1e-12

    # --- read-outs ---
    def dca_orders(self) -> list[dict[str, float]]:
        """The pending DCA orders (resting, or refused for funds and waiting)."""
        s = self.state
        out = []
        for k in range(int(self.params[P_N_SLOTS])):
            b = SLOT0 + k * SLOT_W
            if s.size > b and s[b + DS_STATUS] != 0:
                out.append(
                    {
                        "price": float(s[b + DS_PRICE]),
                        "qty": float(s[b + DS_QTY] - s[b + DS_FILLED]),
                        "margin": float(s[b + DS_MARGIN]),
                        "resting": bool(s[b + DS_STATUS] == 1),
                    }
                )
        return sorted(out, key=lambda o: o["price"])

    def metrics(self) -> dict[str, Any]:
        if not self.state.size:
            return {}
        s = self.state
        c = self.config
        out = self.bot_metrics()
        d = 1.0 if c.direction == "LONG" else -1.0
        pos = float(s[F_POS])
        avg = float(s[F_AVG])
        mark = self._last_close if self._last_close > 0 else float(s[F_LAST])
        unrealized = pos * (mark - avg) * d - float(s[F_OPEN_FEES]) if pos > 0 else 0.0
        invest = float(s[H.H_INVESTMENT])
        realized = float(s[H.H_REALIZED])
        cycles = int(s[H.H_CYCLES])
        days = (float(s[F_LAST_MS]) - float(s[F_FIRST_MS])) / 86_400_000
        liq = float(s[F_LIQ_PRICE])
        margin_used = pos * avg / c.leverage
        out.update(
            {
                "position": pos * d,
                "avg_entry": avg,
                "unrealized_pnl": unrealized,
                "total_pnl": realized + unrealized,
                "investment": invest,
                "roi_on_margin_pct": (realized + unrealized) / invest * 100 if invest else None,
                "margin_used": margin_used,
                "committed_margin": float(s[F_COMMITTED]),
                "max_committed_margin": float(s[F_MAX_COMMITTED]),
                "margin_cap": c.max_margin_multiple * invest,
                "liq_price": liq if liq > 0 else None,
                "liq_distance_pct": (
                    (mark - liq) / mark * d * 100 if pos > 0 and liq > 0 and mark > 0 else None
                ),
                "sl_level": float(s[F_SL_LEVEL]) if s[F_SL_LEVEL] > 0 else None,
                "tp_price": float(s[F_TP_PRICE]) if s[F_TP_PRICE] > 0 else None,
                "averaging_orders_filled": int(s[F_DCA_FILLS]),
                "averaging_orders_total": int(s[F_DCA_PLACED]),
                "avg_averaging_orders_per_cycle": (
                    float(s[F_DCA_FILLS]) / cycles if cycles else None
                ),
                "exit_fills": int(s[F_EXIT_FILLS]),
                "dca_extensions": int(s[F_EXTENSIONS]),
                "dca_moves": int(s[F_MOVES]),
                "committed_margin_at_last_extension": float(s[F_COMMITTED_AT_EXT]),
                "exit_levels": int(s[F_EXIT_LEVELS]),
                "cycle_win_rate_pct": float(s[F_WINS]) / cycles * 100 if cycles else None,
                "avg_cycle_duration_s": float(s[F_CYCLE_MS_SUM]) / cycles / 1e3 if cycles else None,
                "daily_avg_pnl": realized / days if days > 0 else None,
                "skipped_min": int(s[F_SKIPPED_MIN]),
                "dust": float(s[F_DUST]),
                "added_funds": float(s[F_ADDED_FUNDS]),
                "funds_pauses": int(s[F_FUNDS_PAUSES]),
                "liquidations": int(s[F_LIQUIDATED]),
                "max_exit_excess": float(s[F_MAX_EXIT_EXCESS]),
            }
        )
        if s[F_FUNDS_WARN] > 0 and int(s[H.H_STATE]) == C.PAUSED:
            logger.warning("combo: still paused for funds after the last balance poll")
        return out
