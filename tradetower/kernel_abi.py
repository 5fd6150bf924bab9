"""The decision-kernel ABI: the one contract between a strategy's compiled decisions and a venue.

A compiled strategy is a pure ``@njit`` function ``on_event_nb(params, state, event, actions)``
that reads one event row and writes action rows, returning how many it wrote. The simulator
calls it inside its compiled loop; the live runner and the plain-Python path call the very same
function from a thin adapter. Everything here is a plain integer so numba freezes it as a
compile-time constant.
"""

from __future__ import annotations

from typing import Final

# Sides
BUY: Final = 1
SELL: Final = -1

# Order types
MARKET: Final = 0
LIMIT: Final = 1
STOP: Final = 2

# Time in force
GTC: Final = 0
IOC: Final = 1

# Size modes: units of base, or a fraction of what the account can afford at fill time.
SIZE_UNITS: Final = 0
SIZE_FRACTION: Final = 1

# Order status
ST_OPEN: Final = 1
ST_FILLED: Final = 2
ST_CANCELLED: Final = 3
ST_REJECTED: Final = 4

# Reasons carried by a cancel/reject event
R_USER: Final = 0
R_INSUFFICIENT_FUNDS: Final = 1
R_MIN_SIZE: Final = 2
R_INVALID: Final = 3
R_IOC_UNFILLED: Final = 4
R_REDUCE_ONLY: Final = 5
R_LIQUIDATED: Final = 6
R_END: Final = 7
# Pre-trade risk gate refusals (STRATEGIES.md §4; tradetower.risk_nb)
R_RISK_NOTIONAL: Final = 8  # the order's notional is above the cap
R_RISK_LEVERAGE: Final = 9  # the order would lift leverage above the cap
R_RISK_RATE: Final = 10  # more than the allowed orders in a rolling minute
R_RISK_KILLED: Final = 11  # the kill switch is latched: only position-reducing orders pass

# Event types
EV_NONE: Final = 0
EV_START: Final = 1
EV_FILL: Final = 2
EV_CANCEL: Final = 3
EV_TRIGGER: Final = 4
EV_TIMER: Final = 5
EV_SIGNAL: Final = 6
EV_BAR: Final = 7
EV_STOP: Final = 8
EV_END: Final = 9  # internal: no more data
EV_BUFFER_FULL: Final = 10  # internal: a log needs to grow before the run goes on
EV_ACTIONS_OVERFLOW: Final = 11  # internal: a kernel returned more actions than its buffer holds
ALL_EVENTS: Final = -1  # an event mask with every bit set: the kernel is called for every event


def event_mask(events: tuple[int, ...] | None) -> int:
    """The bit mask (bit ``EV_x`` set) of the event types a kernel is called for; ``None``:
    all of them (:data:`ALL_EVENTS`). Only delivered types (``EV_START`` to ``EV_STOP``)."""
    if events is None:
        return ALL_EVENTS
    mask = 0
    for ev in events:
        if not EV_START <= ev <= EV_STOP:
            raise ValueError(f"{ev!r} is not an event type a kernel receives (1 to {EV_STOP})")
        mask |= 1 << ev
    return mask


def wants_event(mask: int, etype: int) -> bool:
    """True when an event of type ``etype`` is delivered under ``mask``."""
    return (mask >> etype) & 1 != 0


# Event row columns
E_TYPE: Final = 0
E_BAR: Final = 1
E_INST: Final = 2
E_ID: Final = 3  # order, trigger or timer id
E_SIDE: Final = 4
E_PRICE: Final = 5  # fill price, trigger level or the bar close
E_QTY: Final = 6
E_FEE: Final = 7
E_CODE: Final = 8  # signal code, cancel reason, 1 for a liquidation fill, a timer's due time (ms)
E_REMAINING: Final = 9  # order quantity still open after a fill
E_TAG: Final = 10  # the strategy's own tag for the order or trigger
E_MARK: Final = 11  # last known price of the instrument (no look-ahead)
E_TIME: Final = 12  # bar timestamp, epoch milliseconds
E_POS_QTY: Final = 13  # position of the instrument after the event
E_CASH: Final = 14  # account cash after the event
E_FREE: Final = 15  # free quote (cash less reservations)
E_EQUITY: Final = 16  # equity marked at the event price
N_EVENT: Final = 17

# Action kinds
A_PLACE: Final = 1
A_CANCEL: Final = 2
A_ARM_CROSS: Final = 3
A_ARM_TRAILING: Final = 4
A_SET_TIMER: Final = 5
A_DISARM: Final = 6
A_CANCEL_ALL: Final = 7

# Action row columns (meaning per kind in the comments)
A_KIND: Final = 0
A_INST: Final = 1
A_SIDE: Final = 2  # place: side; arm_cross: +1 up / -1 down; arm_trailing: +1 long / -1 short
A_TYPE: Final = 3
A_PRICE: Final = 4  # place: limit or stop price; arm_cross: level; arm_trailing: reference
A_QTY: Final = 5  # place: quantity (or fraction); arm_trailing: distance as a fraction
A_TIF: Final = 6
A_REDUCE_ONLY: Final = 7
A_TAG: Final = 8
A_SIZE_MODE: Final = 9
A_ID: Final = 10  # cancel/disarm: target id, or -1 for every one carrying A_TAG (cancel: of
# A_INST, or all instruments when A_INST < 0); set_timer: due time (epoch ms)
A_RESULT: Final = 11  # written back by the venue: the id it assigned
N_ACTION: Final = 12

# Trigger kinds
TR_CROSS_UP: Final = 1
TR_CROSS_DOWN: Final = 2
TR_TRAIL_LONG: Final = 3  # fires when price falls the distance below its running peak
TR_TRAIL_SHORT: Final = 4  # fires when price rises the distance above its running trough
