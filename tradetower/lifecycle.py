"""The bot lifecycle state machine of STRATEGIES.md §2.

The allowed transitions are data: `TRANSITION_TABLE` mirrors the spec's table row by row and
`ALLOWED_TRANSITIONS` is its expansion into ``(from, to, trigger)`` triples. Every pair not listed
is invalid. Three kinds of rows also depend on the bot's history, and are checked by guards:

- resuming from PAUSED (`user_resume`, `funds_available`, ...) must go to `resume_to`;
- `recovered` out of ERROR must go to the state ERROR was entered from, and only while the
  consecutive failures are ≤ `max_consecutive_failures` (3);
- `done` out of CLOSING goes to COMPLETED when the closing was started by `take_profit_hit` or
  `twap_finished`, else to STOPPED.

Choices where the table is silent or self-contradictory (TradeTower's, documented here):

- ERROR has its own rows, so the row "every non-terminal except CLOSING → CLOSING" applies to
  ERROR only for its own triggers (`user_stop`, `kill_switch`): a take-profit cannot fire in a bot
  that is not running. ERROR → ERROR is no transition.
- Nothing enters INITIALIZING, so a bot paused or failed *during* setup resumes (or recovers)
  straight to the state setup reaches: ACTIVE, WAITING or FUNDS_RESERVED, which the caller names.
- ERROR entered from PAUSED recovers to PAUSED with the pause's own `resume_to` intact.
- The consecutive-failure count rises on each entry into ERROR and falls back to 0 on any
  transition that neither enters nor leaves ERROR (the bot demonstrably ran), or when the engine
  calls `reset_failures()` after handling an event successfully.

An invalid attempt raises `InvalidTransition`, leaves the machine unchanged, is appended to
`rejected` and is logged at ERROR.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from tradetower.errors import TradeTowerError

__all__ = [
    "ALLOWED_TRANSITIONS",
    "CLOSE_TRIGGERS",
    "COMPLETING_TRIGGERS",
    "ERROR_TRIGGERS",
    "NON_TERMINAL_STATES",
    "PAUSE_TRIGGERS",
    "RESUME_TRIGGERS",
    "SETUP_OUTCOMES",
    "TERMINAL_STATES",
    "TRANSITION_TABLE",
    "BotLifecycle",
    "BotState",
    "InitiatedBy",
    "InvalidTransition",
    "RejectedTransition",
    "StateTransition",
    "Trigger",
]

logger = logging.getLogger(__name__)

CHECKPOINT_VERSION: Final = 1


class BotState(StrEnum):
    """The 11 bot states."""

    INITIALIZING = "INITIALIZING"
    FUNDS_RESERVED = "FUNDS_RESERVED"
    WAITING = "WAITING"
    ACTIVE = "ACTIVE"
    TRAILING = "TRAILING"
    PUMP = "PUMP"
    PAUSED = "PAUSED"
    CLOSING = "CLOSING"
    STOPPED = "STOPPED"
    COMPLETED = "COMPLETED"
    ERROR = "ERROR"


class Trigger(StrEnum):
    """Why a transition happens; named after the triggers of the §2 table."""

    # setup
    USER_START = "user_start"
    START_CONDITION_PENDING = "start_condition_pending"
    RESERVATION_PLACED = "reservation_placed"
    SETUP_FAILED = "setup_failed"
    # start conditions
    PRICE_CONDITION_MET = "price_condition_met"
    START_CONDITION_MET = "start_condition_met"
    # running
    TRAILING_STARTED = "trailing_started"
    TRAILING_DONE = "trailing_done"
    PUMP_DETECTED = "pump_detected"
    PUMP_CLEARED = "pump_cleared"
    CYCLE_CLOSED = "cycle_closed"
    # pause
    USER_PAUSE = "user_pause"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    BREAKER_OPEN = "breaker_open"
    MARKET_CLOSED = "market_closed"
    DAILY_LOSS_LIMIT = "daily_loss_limit"
    # resume
    USER_RESUME = "user_resume"
    FUNDS_AVAILABLE = "funds_available"
    BREAKER_CLOSED = "breaker_closed"
    MARKET_OPEN = "market_open"
    NEW_TRADING_DAY = "new_trading_day"
    # closing
    TAKE_PROFIT_HIT = "take_profit_hit"
    STOP_LOSS_HIT = "stop_loss_hit"
    LIQUIDATION_BUFFER = "liquidation_buffer"
    USER_STOP = "user_stop"
    CLOSE_SIGNAL = "close_signal"
    KILL_SWITCH = "kill_switch"
    RISK_LIMIT = "risk_limit"
    TWAP_FINISHED = "twap_finished"
    DONE = "done"
    CLOSE_FAILED = "close_failed"
    # errors
    STRATEGY_EXCEPTION = "strategy_exception"
    AUTH_REVOKED = "auth_revoked"
    EXCHANGE_OUTAGE = "exchange_outage"
    RECOVERED = "recovered"
    MAX_RETRIES = "max_retries"


class InitiatedBy(StrEnum):
    """Who caused a transition (the audit record's `initiatedBy`)."""

    SYSTEM = "system"
    USER = "user"
    RISK_ENGINE = "risk_engine"
    EXCHANGE = "exchange"


S = BotState
T = Trigger

TERMINAL_STATES: Final = frozenset({S.STOPPED, S.COMPLETED})
NON_TERMINAL_STATES: Final = frozenset(BotState) - TERMINAL_STATES
#: the states setup can reach; a bot paused or failed during setup resumes to one of them
SETUP_OUTCOMES: Final = frozenset({S.ACTIVE, S.WAITING, S.FUNDS_RESERVED})

PAUSE_TRIGGERS: Final = frozenset(
    {T.USER_PAUSE, T.INSUFFICIENT_FUNDS, T.BREAKER_OPEN, T.MARKET_CLOSED, T.DAILY_LOSS_LIMIT}
)
RESUME_TRIGGERS: Final = frozenset(
    {T.USER_RESUME, T.FUNDS_AVAILABLE, T.BREAKER_CLOSED, T.MARKET_OPEN, T.NEW_TRADING_DAY}
)
CLOSE_TRIGGERS: Final = frozenset(
    {
        T.TAKE_PROFIT_HIT,
        T.STOP_LOSS_HIT,
        T.LIQUIDATION_BUFFER,
        T.USER_STOP,
        T.CLOSE_SIGNAL,
        T.KILL_SWITCH,
        T.RISK_LIMIT,
        T.TWAP_FINISHED,
    }
)
#: a CLOSING started by one of these ends COMPLETED; any other ends STOPPED
COMPLETING_TRIGGERS: Final = frozenset({T.TAKE_PROFIT_HIT, T.TWAP_FINISHED})
ERROR_TRIGGERS: Final = frozenset({T.STRATEGY_EXCEPTION, T.AUTH_REVOKED, T.EXCHANGE_OUTAGE})

#: where PAUSED or ERROR returns to, by the state it was entered from
_RETURN_STATE: Final[Mapping[BotState, BotState]] = MappingProxyType(
    {
        S.INITIALIZING: S.INITIALIZING,
        S.FUNDS_RESERVED: S.FUNDS_RESERVED,
        S.WAITING: S.WAITING,
        S.ACTIVE: S.ACTIVE,
        S.TRAILING: S.ACTIVE,
        S.PUMP: S.ACTIVE,
        S.PAUSED: S.PAUSED,
        S.CLOSING: S.CLOSING,
    }
)

_Row = tuple[frozenset[BotState], frozenset[BotState], frozenset[Trigger]]


def _row(froms: Iterable[BotState], tos: Iterable[BotState], triggers: Iterable[Trigger]) -> _Row:
    return frozenset(froms), frozenset(tos), frozenset(triggers)


#: STRATEGIES.md §2, one entry per row of the table: (from states, to states, triggers)
TRANSITION_TABLE: Final[tuple[_Row, ...]] = (
    _row([S.INITIALIZING], [S.ACTIVE], [T.USER_START]),
    _row([S.INITIALIZING], [S.WAITING], [T.START_CONDITION_PENDING]),
    _row([S.INITIALIZING], [S.FUNDS_RESERVED], [T.RESERVATION_PLACED]),
    _row([S.INITIALIZING], [S.PAUSED], [T.INSUFFICIENT_FUNDS]),
    _row([S.INITIALIZING], [S.ERROR], [T.SETUP_FAILED]),
    _row([S.FUNDS_RESERVED], [S.ACTIVE, S.WAITING], [T.PRICE_CONDITION_MET]),
    _row([S.WAITING], [S.ACTIVE], [T.START_CONDITION_MET]),
    _row([S.ACTIVE], [S.TRAILING], [T.TRAILING_STARTED]),
    _row([S.TRAILING], [S.ACTIVE], [T.TRAILING_DONE]),
    _row([S.ACTIVE], [S.PUMP], [T.PUMP_DETECTED]),
    _row([S.PUMP], [S.ACTIVE], [T.PUMP_CLEARED]),
    _row(
        [S.ACTIVE, S.TRAILING, S.PUMP, S.WAITING, S.FUNDS_RESERVED],
        [S.PAUSED],
        PAUSE_TRIGGERS,
    ),
    # PAUSED → resume_to: every state resume_to can name (guarded)
    _row([S.PAUSED], SETUP_OUTCOMES, RESUME_TRIGGERS),
    _row([S.ACTIVE], [S.WAITING, S.FUNDS_RESERVED], [T.CYCLE_CLOSED]),
    _row(NON_TERMINAL_STATES - {S.CLOSING, S.ERROR}, [S.CLOSING], CLOSE_TRIGGERS),
    # CLOSING → COMPLETED or STOPPED on `done`, by the trigger that started the closing (guarded)
    _row([S.CLOSING], [S.COMPLETED, S.STOPPED], [T.DONE]),
    _row([S.CLOSING], [S.ERROR], [T.CLOSE_FAILED]),
    _row(NON_TERMINAL_STATES - {S.ERROR}, [S.ERROR], ERROR_TRIGGERS),
    # ERROR → resume_to: every state ERROR can return to (guarded)
    _row([S.ERROR], SETUP_OUTCOMES | {S.PAUSED, S.CLOSING}, [T.RECOVERED]),
    _row([S.ERROR], [S.CLOSING], [T.USER_STOP, T.KILL_SWITCH]),
    _row([S.ERROR], [S.STOPPED], [T.MAX_RETRIES]),
)

#: every allowed (from, to, trigger); anything else is invalid
ALLOWED_TRANSITIONS: Final[frozenset[tuple[BotState, BotState, Trigger]]] = frozenset(
    (src, dst, trig)
    for froms, tos, trigs in TRANSITION_TABLE
    for src in froms
    for dst in tos
    for trig in trigs
)

_DEFAULT_INITIATOR: Final[Mapping[Trigger, InitiatedBy]] = MappingProxyType(
    {
        T.USER_START: InitiatedBy.USER,
        T.USER_PAUSE: InitiatedBy.USER,
        T.USER_RESUME: InitiatedBy.USER,
        T.USER_STOP: InitiatedBy.USER,
        T.DAILY_LOSS_LIMIT: InitiatedBy.RISK_ENGINE,
        T.LIQUIDATION_BUFFER: InitiatedBy.RISK_ENGINE,
        T.KILL_SWITCH: InitiatedBy.RISK_ENGINE,
        T.RISK_LIMIT: InitiatedBy.RISK_ENGINE,
        T.INSUFFICIENT_FUNDS: InitiatedBy.EXCHANGE,
        T.BREAKER_OPEN: InitiatedBy.EXCHANGE,
        T.BREAKER_CLOSED: InitiatedBy.EXCHANGE,
        T.MARKET_CLOSED: InitiatedBy.EXCHANGE,
        T.MARKET_OPEN: InitiatedBy.EXCHANGE,
        T.AUTH_REVOKED: InitiatedBy.EXCHANGE,
        T.EXCHANGE_OUTAGE: InitiatedBy.EXCHANGE,
    }
)


def default_initiator(trigger: Trigger) -> InitiatedBy:
    """Who usually causes `trigger` (SYSTEM unless it is a user, risk or venue event)."""
    return _DEFAULT_INITIATOR.get(trigger, InitiatedBy.SYSTEM)


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"lifecycle times must be timezone-aware (got naive {at.isoformat()})")
    return at.astimezone(UTC)


def _freeze(context: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(context or {}))


def _reduce_record(record: Any) -> tuple[Any, ...]:
    # A read-only mapping proxy does not pickle; hand a plain dict to the constructor instead.
    values = [getattr(record, f.name) for f in fields(record)]
    return (type(record), tuple(dict(v) if isinstance(v, Mapping) else v for v in values))


@dataclass(frozen=True, slots=True)
class StateTransition:
    """One accepted transition (the `BotStateTransition` audit record)."""

    bot_run_id: str
    from_state: BotState
    to_state: BotState
    trigger: Trigger
    reason: str
    at: datetime
    initiated_by: InitiatedBy
    context: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", _utc(self.at))
        object.__setattr__(self, "context", _freeze(self.context))

    def __reduce__(self) -> tuple[Any, ...]:
        return _reduce_record(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "bot_run_id": self.bot_run_id,
            "from": self.from_state.value,
            "to": self.to_state.value,
            "trigger": self.trigger.value,
            "reason": self.reason,
            "at": self.at.isoformat(),
            "initiated_by": self.initiated_by.value,
            "context": dict(self.context),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StateTransition:
        return cls(
            bot_run_id=str(data["bot_run_id"]),
            from_state=BotState(data["from"]),
            to_state=BotState(data["to"]),
            trigger=Trigger(data["trigger"]),
            reason=str(data.get("reason", "")),
            at=datetime.fromisoformat(data["at"]),
            initiated_by=InitiatedBy(data["initiated_by"]),
            context=data.get("context") or {},
        )


@dataclass(frozen=True, slots=True)
class RejectedTransition:
    """An attempted transition that was refused; `detail` says why."""

    bot_run_id: str
    from_state: BotState
    to_state: BotState
    trigger: Trigger
    reason: str
    detail: str
    at: datetime
    initiated_by: InitiatedBy
    context: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", _utc(self.at))
        object.__setattr__(self, "context", _freeze(self.context))

    def __reduce__(self) -> tuple[Any, ...]:
        return _reduce_record(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "bot_run_id": self.bot_run_id,
            "from": self.from_state.value,
            "to": self.to_state.value,
            "trigger": self.trigger.value,
            "reason": self.reason,
            "detail": self.detail,
            "at": self.at.isoformat(),
            "initiated_by": self.initiated_by.value,
            "context": dict(self.context),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RejectedTransition:
        return cls(
            bot_run_id=str(data["bot_run_id"]),
            from_state=BotState(data["from"]),
            to_state=BotState(data["to"]),
            trigger=Trigger(data["trigger"]),
            reason=str(data.get("reason", "")),
            detail=str(data.get("detail", "")),
            at=datetime.fromisoformat(data["at"]),
            initiated_by=InitiatedBy(data["initiated_by"]),
            context=data.get("context") or {},
        )


class InvalidTransition(TradeTowerError):
    """A transition that the lifecycle table (or one of its guards) does not allow."""

    code = "INVALID_TRANSITION"

    def __init__(
        self, from_state: BotState, to_state: BotState, trigger: Trigger, detail: str = ""
    ) -> None:
        self.from_state = from_state
        self.to_state = to_state
        self.trigger = trigger
        self.detail = detail
        message = f"invalid transition {from_state} -> {to_state} on '{trigger}'"
        super().__init__(f"{message}: {detail}" if detail else message)


TransitionListener = Callable[[StateTransition], None]
RejectionListener = Callable[[RejectedTransition], None]


def _now() -> datetime:
    return datetime.now(UTC)


class BotLifecycle:
    """The state of one BotRun, and the only way to change it.

    Args:
        bot_run_id: the BotRun this machine belongs to (copied into every record).
        clock: returns the current time (timezone-aware); the wall clock by default. A backtest
            hands in its simulated clock.
        on_transition: called, in order, with each accepted transition (audit writer,
            notifications). Every listener is called; if any raised, the first error is re-raised
            afterwards. The transition itself stands.
        on_rejected: called with each refused attempt.
        max_consecutive_failures: how many consecutive entries into ERROR may still `recover`.
    """

    def __init__(
        self,
        bot_run_id: str,
        clock: Callable[[], datetime] | None = None,
        *,
        on_transition: Iterable[TransitionListener] = (),
        on_rejected: Iterable[RejectionListener] = (),
        max_consecutive_failures: int = 3,
    ) -> None:
        if max_consecutive_failures < 0:
            raise ValueError("max_consecutive_failures must be ≥ 0")
        self.bot_run_id = bot_run_id
        self.clock: Callable[[], datetime] = clock or _now
        self.on_transition: list[TransitionListener] = list(on_transition)
        self.on_rejected: list[RejectionListener] = list(on_rejected)
        self.max_consecutive_failures = max_consecutive_failures
        self.history: list[StateTransition] = []
        self.rejected: list[RejectedTransition] = []
        self._state = BotState.INITIALIZING
        self._resume_to: BotState | None = None
        # PAUSED's resume_to, kept while a paused bot sits in ERROR
        self._paused_resume_to: BotState | None = None
        self._closing_trigger: Trigger | None = None
        self._consecutive_failures = 0
        self._position_open = False

    # ------------------------------------------------------------------ read-only views

    @property
    def state(self) -> BotState:
        return self._state

    @property
    def resume_to(self) -> BotState | None:
        """Where PAUSED resumes to, or ERROR recovers to; ``None`` in any other state.

        INITIALIZING here means "wherever setup gets to" (ACTIVE, WAITING or FUNDS_RESERVED).
        """
        return self._resume_to

    @property
    def closing_trigger(self) -> Trigger | None:
        """The trigger that started the current (or last) CLOSING."""
        return self._closing_trigger

    @property
    def closing_outcome(self) -> BotState | None:
        """COMPLETED or STOPPED: where `done` will take the current CLOSING."""
        if self._closing_trigger is None:
            return None
        return S.COMPLETED if self._closing_trigger in COMPLETING_TRIGGERS else S.STOPPED

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive_failures

    @property
    def position_open(self) -> bool:
        """True once the run gave up (ERROR → STOPPED on `max_retries`) with a position left."""
        return self._position_open

    @property
    def is_terminal(self) -> bool:
        return self._state in TERMINAL_STATES

    def resume_targets(self) -> frozenset[BotState]:
        """The states that resuming (from PAUSED) or recovering (from ERROR) may go to now."""
        if self._resume_to is None:
            return frozenset()
        if self._resume_to is S.INITIALIZING:
            return SETUP_OUTCOMES
        return frozenset({self._resume_to})

    # ------------------------------------------------------------------ checks

    def _refusal(self, to: BotState, trigger: Trigger) -> str | None:
        """Why (to, trigger) is not allowed from the current state; ``None`` when it is."""
        src = self._state
        if (src, to, trigger) not in ALLOWED_TRANSITIONS:
            if src in TERMINAL_STATES:
                return f"{src} is terminal; a restart creates a new BotRun"
            if to is S.INITIALIZING:
                hint = "; name the state setup reaches" if trigger in RESUME_TRIGGERS else ""
                return f"nothing enters INITIALIZING{hint}"
            return "not in the lifecycle table"
        guard = _GUARDS.get(trigger)
        return guard(self, to) if guard is not None else None

    def _guard_resume(self, to: BotState) -> str | None:
        targets = self.resume_targets()
        if to not in targets:
            allowed = ", ".join(sorted(targets)) or "nothing"
            return f"resume_to is {self._resume_to}, so it may only go to {allowed}"
        return None

    def _guard_recovered(self, to: BotState) -> str | None:
        if self._consecutive_failures > self.max_consecutive_failures:
            return (
                f"{self._consecutive_failures} consecutive failures exceed "
                f"max_consecutive_failures={self.max_consecutive_failures}"
            )
        return self._guard_resume(to)

    def _guard_done(self, to: BotState) -> str | None:
        outcome = self.closing_outcome
        if to is not outcome:
            return f"the closing was started by '{self._closing_trigger}', so it ends {outcome}"
        return None

    def can_transition(self, to: BotState, trigger: Trigger) -> bool:
        """Whether `transition(to, trigger)` would be accepted now."""
        return self._refusal(BotState(to), Trigger(trigger)) is None

    def allowed_moves(self) -> frozenset[tuple[BotState, Trigger]]:
        """Every (to, trigger) accepted from the current state, guards included."""
        return frozenset(
            (dst, trig)
            for src, dst, trig in ALLOWED_TRANSITIONS
            if src is self._state and self._refusal(dst, trig) is None
        )

    # ------------------------------------------------------------------ changes

    def transition(
        self,
        to: BotState,
        trigger: Trigger,
        reason: str = "",
        initiated_by: InitiatedBy | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> StateTransition:
        """Move to `to` because of `trigger`, record it and tell the listeners.

        `initiated_by` defaults to the trigger's usual initiator (`default_initiator`).

        Raises:
            InvalidTransition: the move is not allowed; nothing changed except `rejected`.
        """
        to, trigger = BotState(to), Trigger(trigger)
        who = initiated_by if initiated_by is not None else default_initiator(trigger)
        at = self.clock()
        refusal = self._refusal(to, trigger)
        if refusal is not None:
            self._reject(to, trigger, reason, refusal, at, who, context)
        record = StateTransition(
            bot_run_id=self.bot_run_id,
            from_state=self._state,
            to_state=to,
            trigger=trigger,
            reason=reason,
            at=at,
            initiated_by=who,
            context=context or {},
        )
        self._apply(record)
        self.history.append(record)
        logger.info(
            "bot run %s: %s -> %s on %s%s",
            self.bot_run_id,
            record.from_state,
            to,
            trigger,
            f" ({reason})" if reason else "",
        )
        self._notify(self.on_transition, record)
        return record

    def _reject(
        self,
        to: BotState,
        trigger: Trigger,
        reason: str,
        detail: str,
        at: datetime,
        who: InitiatedBy,
        context: Mapping[str, Any] | None,
    ) -> None:
        error = InvalidTransition(self._state, to, trigger, detail)
        record = RejectedTransition(
            bot_run_id=self.bot_run_id,
            from_state=self._state,
            to_state=to,
            trigger=trigger,
            reason=reason,
            detail=detail,
            at=at,
            initiated_by=who,
            context=context or {},
        )
        self.rejected.append(record)
        logger.error("bot run %s: %s", self.bot_run_id, error)
        self._notify(self.on_rejected, record)
        raise error

    def _apply(self, record: StateTransition) -> None:
        src, dst, trigger = record.from_state, record.to_state, record.trigger
        if dst is S.PAUSED:
            if src is S.ERROR:  # recovered to PAUSED: the pause's own target comes back
                self._resume_to, self._paused_resume_to = self._paused_resume_to, None
            else:
                self._resume_to = _RETURN_STATE[src]
        elif dst is S.ERROR:
            self._consecutive_failures += 1
            if src is S.PAUSED:
                self._paused_resume_to = self._resume_to
            self._resume_to = _RETURN_STATE[src]
        else:
            self._resume_to = None
            self._paused_resume_to = None
        if dst is S.CLOSING and trigger is not T.RECOVERED:
            self._closing_trigger = trigger
        if dst is S.STOPPED and trigger is T.MAX_RETRIES:
            self._position_open = True
        if S.ERROR not in (src, dst):
            self._consecutive_failures = 0
        self._state = dst

    @staticmethod
    def _notify(listeners: Iterable[Callable[[Any], None]], record: object) -> None:
        first: BaseException | None = None
        for listener in list(listeners):
            try:
                listener(record)
            except Exception as exc:
                logger.exception("lifecycle listener %r failed", listener)
                if first is None:
                    first = exc
        if first is not None:
            raise first

    # ------------------------------------------------------------------ conveniences

    def pause(
        self,
        trigger: Trigger = T.USER_PAUSE,
        reason: str = "",
        initiated_by: InitiatedBy | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> StateTransition:
        """Enter PAUSED, remembering where to resume to."""
        return self.transition(S.PAUSED, trigger, reason, initiated_by, context)

    def resume(
        self,
        trigger: Trigger = T.USER_RESUME,
        reason: str = "",
        initiated_by: InitiatedBy | None = None,
        context: Mapping[str, Any] | None = None,
        *,
        to: BotState | None = None,
    ) -> StateTransition:
        """Leave PAUSED for `resume_to` (TRAILING and PUMP resume to ACTIVE).

        `to` is needed only when the bot was paused during setup: it names the state setup
        reaches (ACTIVE, WAITING or FUNDS_RESERVED).
        """
        return self.transition(self._return_target(to), trigger, reason, initiated_by, context)

    def recover(
        self,
        reason: str = "",
        initiated_by: InitiatedBy | None = None,
        context: Mapping[str, Any] | None = None,
        *,
        to: BotState | None = None,
    ) -> StateTransition:
        """Leave ERROR for the state it was entered from (`recovered`)."""
        return self.transition(self._return_target(to), T.RECOVERED, reason, initiated_by, context)

    def finish_closing(
        self,
        reason: str = "",
        initiated_by: InitiatedBy | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> StateTransition:
        """End CLOSING (`done`): COMPLETED after a take-profit or a finished TWAP, else STOPPED."""
        target = self.closing_outcome or S.STOPPED
        return self.transition(target, T.DONE, reason, initiated_by, context)

    def _return_target(self, to: BotState | None) -> BotState:
        if to is not None:
            return to
        # With no resume_to the attempt is a self-loop, which the table refuses (and records).
        return self._resume_to if self._resume_to is not None else self._state

    def reset_failures(self) -> None:
        """The engine handled an event successfully: failures are no longer consecutive."""
        self._consecutive_failures = 0

    # ------------------------------------------------------------------ checkpoint

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready checkpoint (context values must be JSON-ready themselves)."""
        return {
            "version": CHECKPOINT_VERSION,
            "bot_run_id": self.bot_run_id,
            "state": self._state.value,
            "resume_to": _opt(self._resume_to),
            "paused_resume_to": _opt(self._paused_resume_to),
            "closing_trigger": _opt(self._closing_trigger),
            "consecutive_failures": self._consecutive_failures,
            "max_consecutive_failures": self.max_consecutive_failures,
            "position_open": self._position_open,
            "history": [t.to_dict() for t in self.history],
            "rejected": [r.to_dict() for r in self.rejected],
        }

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        clock: Callable[[], datetime] | None = None,
        *,
        on_transition: Iterable[TransitionListener] = (),
        on_rejected: Iterable[RejectionListener] = (),
    ) -> BotLifecycle:
        """Restore a checkpoint written by `to_dict`.

        Raises:
            ValueError: unknown version, unknown names, or a history that does not chain up to
                the stored state through allowed transitions.
        """
        version = data.get("version")
        if version != CHECKPOINT_VERSION:
            raise ValueError(f"unsupported lifecycle checkpoint version {version!r}")
        machine = cls(
            str(data["bot_run_id"]),
            clock,
            on_transition=on_transition,
            on_rejected=on_rejected,
            max_consecutive_failures=int(data["max_consecutive_failures"]),
        )
        history = [StateTransition.from_dict(t) for t in data.get("history", [])]
        state = BotState(data["state"])
        expected = S.INITIALIZING
        for i, step in enumerate(history):
            edge = (step.from_state, step.to_state, step.trigger)
            if step.from_state is not expected or edge not in ALLOWED_TRANSITIONS:
                raise ValueError(
                    f"checkpoint history entry {i} ({step.from_state} -> {step.to_state} on "
                    f"'{step.trigger}') does not follow {expected} by an allowed transition"
                )
            expected = step.to_state
        if history and expected is not state:
            raise ValueError(f"checkpoint state {state} differs from its history's end {expected}")
        machine.history = history
        machine.rejected = [RejectedTransition.from_dict(r) for r in data.get("rejected", [])]
        machine._state = state
        machine._resume_to = _opt_state(data.get("resume_to"))
        machine._paused_resume_to = _opt_state(data.get("paused_resume_to"))
        closing = data.get("closing_trigger")
        machine._closing_trigger = None if closing is None else Trigger(closing)
        machine._consecutive_failures = int(data["consecutive_failures"])
        machine._position_open = bool(data["position_open"])
        return machine


def _opt(value: StrEnum | None) -> str | None:
    return None if value is None else value.value


def _opt_state(value: object) -> BotState | None:
    return None if value is None else BotState(str(value))


_Guard = Callable[[BotLifecycle, BotState], str | None]

#: guards for the rows whose target depends on the run's history, by trigger
_GUARDS: Final[Mapping[Trigger, _Guard]] = MappingProxyType(
    {
        **dict.fromkeys(RESUME_TRIGGERS, BotLifecycle._guard_resume),
        T.RECOVERED: BotLifecycle._guard_recovered,
        T.DONE: BotLifecycle._guard_done,
    }
)
