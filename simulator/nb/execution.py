"""Executing fills: prices, slippage, fees, funds and margin checks, positions, liquidation."""

import numpy as np

from simulator import state as S
from simulator.nb.orders import (
    bounds_stale_nb,
    equity_nb,
    finish_order_nb,
    push_pending_nb,
    release_lock_nb,
    write_event_nb,
)
from simulator.nb.rounding import floor_qty_nb
from tradetower import kernel_abi as K
from tradetower.jit_options import kernel_jit, kernel_jit_inline

LIQ_FRACTION = 0.9  # liq = avg(1 ∓ 0.9/L): STRATEGIES.md §3.3, a TradeTower choice


@kernel_jit_inline
def slipped_price_nb(
    st: S.SimState, i: int, side: float, price: float, qty: float, t: int
) -> float:
    mode = st.params[S.P_SLIP_MODE]
    if mode == S.SLIP_NONE:
        return price
    bps = st.params[S.P_SLIP_BPS]
    if mode == S.SLIP_VOLUME:
        vol = st.ohlcv[t, i, 4]
        bps = st.params[S.P_MAX_BPS]
        if vol > 0:
            bps = min(st.params[S.P_MAX_BPS], st.params[S.P_IMPACT] * qty / vol * 1e4)
    return price * (1.0 + side * bps * 1e-4)


@kernel_jit_inline
def margin_used_nb(st: S.SimState, skip: int) -> float:
    used = 0.0
    for j in range(st.pos.shape[0]):
        if j == skip or st.inst[j, S.I_MARGIN] == 0:
            continue
        q = st.pos[j, S.PS_QTY]
        if q != 0.0:
            used += abs(q) * st.pos[j, S.PS_MARK] / st.inst[j, S.I_LEVERAGE]
    return used


@kernel_jit_inline
def affordable_qty_nb(
    st: S.SimState, i: int, side: float, price: float, rate: float, lock: float
) -> float:
    """The most an order can fill at ``price`` given cash (spot) or margin (margin instruments)."""
    inst = st.inst[i]
    pos = st.pos[i, S.PS_QTY]
    if inst[S.I_MARGIN] == 0:
        if side > 0:
            free = st.account[S.AC_CASH] - st.account[S.AC_LOCKED] + lock
            return max(0.0, free / (price * (1.0 + rate)))
        return max(0.0, pos - st.pos[i, S.PS_LOCKED] + lock)
    lev = inst[S.I_LEVERAGE]
    eq = st.account[S.AC_CASH]
    for j in range(st.pos.shape[0]):
        q = st.pos[j, S.PS_QTY]
        if q != 0.0:
            eq += q * (price if j == i else st.pos[j, S.PS_MARK])
    avail = eq - margin_used_nb(st, i)
    allowed_abs = max(0.0, avail * lev / (price * (1.0 + rate * lev)))
    # Reducing the current position is always allowed; beyond it, margin limits the new side.
    return (
        max(0.0, allowed_abs + side * pos * -1.0)
        if side * pos < 0
        else max(0.0, allowed_abs - abs(pos))
    )


@kernel_jit_inline
def apply_fill_nb(
    st: S.SimState,
    i: int,
    oid: int,
    side: float,
    qty: float,
    price: float,
    fee: float,
    taker: float,
    liquidation: float,
    slip_cost: float,
) -> None:
    """Book a fill: cash, fees, position, average price and liquidation price, fill log."""
    st.account[S.AC_CASH] -= side * qty * price + fee
    st.account[S.AC_FEES] += fee
    st.account[S.AC_SLIPPAGE] += slip_cost
    old = st.pos[i, S.PS_QTY]
    new = old + side * qty
    if abs(new) < 1e-12:
        new = 0.0
    avg = st.pos[i, S.PS_AVG]
    if new == 0.0:
        avg = 0.0
    elif old == 0.0 or (old > 0) != (new > 0):
        avg = price
    elif abs(new) > abs(old):
        avg = (abs(old) * avg + qty * price) / abs(new)
    st.pos[i, S.PS_QTY] = new
    st.pos[i, S.PS_AVG] = avg
    st.pos[i, S.PS_MARK] = price
    liq = np.nan
    if st.inst[i, S.I_MARGIN] > 0 and st.params[S.P_LIQUIDATION] > 0 and new != 0.0:
        lev = st.inst[i, S.I_LEVERAGE]
        liq = avg * (1.0 - LIQ_FRACTION / lev) if new > 0 else avg * (1.0 + LIQ_FRACTION / lev)
    st.pos[i, S.PS_LIQ] = liq
    f = st.counters[S.C_N_FILLS]
    st.counters[S.C_N_FILLS] = f + 1
    row = st.fills[f]
    row[S.F_ORDER] = oid
    row[S.F_BAR] = st.counters[S.C_BAR]
    row[S.F_INST] = i
    row[S.F_SIDE] = side
    row[S.F_QTY] = qty
    row[S.F_PRICE] = price
    row[S.F_FEE] = fee
    row[S.F_TAKER] = taker
    row[S.F_LIQUIDATION] = liquidation
    row[S.F_SLIPPAGE] = slip_cost


@kernel_jit_inline
def execute_order_nb(st: S.SimState, oid: int, price: float, ev: np.ndarray) -> int:
    """Fill (all or part of) order ``oid`` touched at ``price`` in the current bar.

    Returns the event type written to ``ev``: a fill, a cancel when the order cannot be filled
    (funds, reduce-only), or EV_NONE when the bar's volume allowance is used up.
    """
    t = st.counters[S.C_BAR]
    o = st.orders[oid]
    i = int(o[S.O_INST])
    inst = st.inst[i]
    side = o[S.O_SIDE]
    typ = int(o[S.O_TYPE])
    o[S.O_LAST_HIT_BAR] = t
    taker = o[S.O_TAKER]
    rate = inst[S.I_TAKER] if taker > 0 else inst[S.I_MAKER]
    remaining = o[S.O_QTY] - o[S.O_FILLED]
    sized_now = False
    if o[S.O_SIZE_MODE] == K.SIZE_FRACTION:
        # Sized once, at its first touch; from then on the order is in units (a bar whose
        # volume allowance is used up must not apply the fraction a second time).
        est = slipped_price_nb(st, i, side, price, 0.0, t) if typ != K.LIMIT else price
        afford = affordable_qty_nb(st, i, side, est, rate, o[S.O_LOCK])
        remaining = floor_qty_nb(afford * o[S.O_QTY], inst[S.I_LOT], inst[S.I_LOT_DEC])
        o[S.O_QTY] = remaining
        o[S.O_SIZE_MODE] = K.SIZE_UNITS
        sized_now = True
    qty = remaining
    part = st.params[S.P_PARTICIPATION]
    vol_capped = False
    if part > 0.0:
        room = part * st.ohlcv[t, i, 4] - st.vol_used[i]
        allowed = floor_qty_nb(max(room, 0.0), inst[S.I_LOT], inst[S.I_LOT_DEC])
        if allowed < qty:
            qty = allowed
            vol_capped = True
        if qty <= 0.0 and remaining > 0.0:
            return K.EV_NONE
    pos = st.pos[i, S.PS_QTY]
    pos_capped = False
    if o[S.O_REDUCE] > 0:
        if pos == 0.0 or (pos > 0) == (side > 0):
            finish_order_nb(st, oid, K.ST_CANCELLED, K.R_REDUCE_ONLY)
            bounds_stale_nb(st)
            write_event_nb(
                st,
                ev,
                K.EV_CANCEL,
                i,
                oid,
                side,
                o[S.O_PRICE],
                o[S.O_FILLED],
                0.0,
                K.R_REDUCE_ONLY,
                o[S.O_QTY] - o[S.O_FILLED],
                o[S.O_TAG],
            )
            return K.EV_CANCEL
        if abs(pos) < qty:
            qty = abs(pos)
            pos_capped = True
    px = price
    if typ != K.LIMIT:
        px = slipped_price_nb(st, i, side, price, qty, t)
    cap = affordable_qty_nb(st, i, side, px, rate, o[S.O_LOCK])
    funds_capped = qty > cap * (1.0 + 1e-9) + 1e-12
    if funds_capped:
        wanted = qty
        qty = floor_qty_nb(cap, inst[S.I_LOT], inst[S.I_LOT_DEC])
        if sized_now:
            # A fraction of what the account affords: a worse price than estimated (volume
            # slippage) makes the order smaller, not short of funds.
            o[S.O_QTY] -= wanted - qty
            funds_capped = False
    if sized_now and remaining <= 0.0:
        funds_capped = True  # a fraction of nothing: the account affords no unit at all
    # The minimums apply to an order's first fill (its size may be set only now, for fraction
    # sizing), never to the later slices a volume cap cuts it into.
    below_min = o[S.O_FILLED] == 0.0 and (
        qty < inst[S.I_MIN_QTY] or qty * px < inst[S.I_MIN_NOTIONAL] - 1e-12
    )
    if qty <= 0.0 or below_min:
        if vol_capped and not funds_capped and qty > 0.0:
            # The bar's volume allowance is below the minimums: wait for a bar with more.
            return K.EV_NONE
        reason = K.R_INSUFFICIENT_FUNDS if funds_capped else K.R_MIN_SIZE
        finish_order_nb(st, oid, K.ST_CANCELLED, reason)
        bounds_stale_nb(st)
        write_event_nb(
            st,
            ev,
            K.EV_CANCEL,
            i,
            oid,
            side,
            o[S.O_PRICE],
            o[S.O_FILLED],
            0.0,
            reason,
            o[S.O_QTY] - o[S.O_FILLED],
            o[S.O_TAG],
        )
        return K.EV_CANCEL
    fee = px * qty * rate
    # Release this fill's share of the reservation before booking it.
    if o[S.O_LOCK] > 0.0 and remaining > 0.0:
        release_lock_nb(st, oid, o[S.O_LOCK] * min(1.0, qty / remaining))
    apply_fill_nb(st, i, oid, side, qty, px, fee, taker, 0.0, abs(px - price) * qty)
    st.vol_used[i] += qty
    prev = o[S.O_FILLED]
    o[S.O_FILLED] = prev + qty
    o[S.O_FEES] += fee
    o[S.O_AVG_FILL] = px if prev == 0.0 else (o[S.O_AVG_FILL] * prev + px * qty) / (prev + qty)
    left = o[S.O_QTY] - o[S.O_FILLED]
    if left <= 1e-12:
        left = 0.0
        finish_order_nb(st, oid, K.ST_FILLED, -1)
    elif o[S.O_TIF] == K.IOC or funds_capped or pos_capped:
        # What is left cannot wait: an IOC remainder, the part the account could not pay for,
        # or the part of a reduce-only order beyond the position it closed.
        reason = K.R_IOC_UNFILLED
        if funds_capped:
            reason = K.R_INSUFFICIENT_FUNDS
        elif pos_capped:
            reason = K.R_REDUCE_ONLY
        finish_order_nb(st, oid, K.ST_CANCELLED, reason)
        push_pending_nb(
            st,
            K.EV_CANCEL,
            i,
            oid,
            side,
            o[S.O_PRICE],
            o[S.O_FILLED],
            reason,
            left,
            o[S.O_TAG],
        )
    bounds_stale_nb(st)
    write_event_nb(st, ev, K.EV_FILL, i, oid, side, px, qty, fee, 0.0, left, o[S.O_TAG])
    return K.EV_FILL


@kernel_jit
def liquidate_nb(st: S.SimState, i: int, price: float, ev: np.ndarray) -> int:
    """Close instrument ``i``'s margin position at its liquidation price (taker fee)."""
    pos = st.pos[i, S.PS_QTY]
    side = -1.0 if pos > 0 else 1.0
    qty = abs(pos)
    fee = price * qty * st.inst[i, S.I_TAKER]
    apply_fill_nb(st, i, -1, side, qty, price, fee, 1.0, 1.0, 0.0)
    # Reduce-only orders lose their purpose with the position.
    j = 0
    while j < st.counters[S.C_N_ACTIVE]:
        oid = st.active[j]
        if int(st.orders[oid, S.O_INST]) == i and st.orders[oid, S.O_REDUCE] > 0:
            finish_order_nb(st, oid, K.ST_CANCELLED, K.R_LIQUIDATED)
            o = st.orders[oid]
            push_pending_nb(
                st,
                K.EV_CANCEL,
                i,
                oid,
                o[S.O_SIDE],
                o[S.O_PRICE],
                o[S.O_FILLED],
                K.R_LIQUIDATED,
                o[S.O_QTY] - o[S.O_FILLED],
                o[S.O_TAG],
            )
        else:
            j += 1
    bounds_stale_nb(st)
    write_event_nb(st, ev, K.EV_FILL, i, -1.0, side, price, qty, fee, 1.0, 0.0, 0.0)
    return K.EV_FILL


@kernel_jit
def apply_funding_nb(st: S.SimState, t: int) -> None:
    """Longs pay positive funding rates, shorts receive them, on the notional at the open."""
    if st.funding.shape[0] == 0:
        return
    for i in range(st.pos.shape[0]):
        rate = st.funding[t, i]
        q = st.pos[i, S.PS_QTY]
        if rate != 0.0 and q != 0.0:
            payment = -q * st.pos[i, S.PS_MARK] * rate
            st.account[S.AC_CASH] += payment
            st.account[S.AC_FUNDING] += payment
            st.cflow[t] += payment


@kernel_jit
def unused_equity_nb(st: S.SimState) -> float:
    return equity_nb(st)
