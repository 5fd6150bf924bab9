"""TradeTower's exception tree.

Venue errors follow PLATFORM.md §2 "Errors": every `ConnectorError` says whether the call may be
retried (`retryable`) and whether it counts towards the venue's circuit breaker (`trips_breaker`).
Only server-side failures (5xx, refused connections, timeouts) trip the breaker; no 4xx does.
The class attributes hold the defaults; an instance may override them (a venue that answers an
undocumented code, say), which sets instance attributes of the same names.

The engine's own errors (`ConfigError`, `DataValidationError`, `TenantRequiredError`) live here
too, so that the HTTP layer and the CLI can map the whole tree to answers in one place.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "AuthenticationError",
    "CircuitOpenError",
    "ConfigError",
    "ConfigIssue",
    "ConnectorError",
    "DataValidationError",
    "ExchangeUnavailableError",
    "HostNotAllowedError",
    "InsufficientFundsError",
    "InvalidOrderError",
    "MarketClosedError",
    "OrderNotFoundError",
    "OrderRejectedError",
    "PacingViolationError",
    "PdtViolationError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RequestTimeoutError",
    "SchemaMismatchError",
    "SessionExpiredError",
    "TenantRequiredError",
    "TradeTowerError",
]


def _rebuild(cls: type[TradeTowerError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    """Unpickle an error without calling its (keyword-heavy) ``__init__``."""
    err = cls.__new__(cls)
    err.args = args
    err.__dict__.update(state)
    return err


class TradeTowerError(Exception):
    """Base of every error TradeTower raises on purpose.

    `code` is a stable, machine-readable name (API answers, audit records).
    """

    code: ClassVar[str] = "TRADETOWER_ERROR"

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take keyword arguments that `Exception.__reduce__` would drop; keep them so
        # errors survive pickling (process pools, Dask workers).
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


# --------------------------------------------------------------------------- connector errors


class ConnectorError(TradeTowerError):
    """An exchange connector call failed.

    Args:
        message: what went wrong, in words.
        broker: the venue that answered (``"alpaca"``, ``"ibkr"``...), empty when unknown.
        retryable: overrides the class default; ``None`` keeps it.
        trips_breaker: overrides the class default; ``None`` keeps it.
    """

    code: ClassVar[str] = "CONNECTOR_ERROR"
    #: the HTTP status this error usually comes from, when there is one
    http_status: ClassVar[int | None] = None
    retryable: bool = False
    trips_breaker: bool = False

    def __init__(
        self,
        message: str = "",
        *,
        broker: str = "",
        retryable: bool | None = None,
        trips_breaker: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.broker = broker
        if retryable is not None:
            self.retryable = retryable
        if trips_breaker is not None:
            self.trips_breaker = trips_breaker

    def __str__(self) -> str:
        text = self.message or type(self).__name__
        return f"[{self.broker}] {text}" if self.broker else text


class AuthenticationError(ConnectorError):
    """401: credentials refused. The connection goes to ERROR and its bots pause."""

    code = "AUTHENTICATION_FAILED"
    http_status = 401


class SessionExpiredError(ConnectorError):
    """The session token expired: refresh the session, then retry once."""

    code = "SESSION_EXPIRED"
    http_status = 401
    retryable = True


class PermissionDeniedError(ConnectorError):
    """403: the credentials lack a permission (trading, a market, an account)."""

    code = "PERMISSION_DENIED"
    http_status = 403


class RateLimitedError(ConnectorError):
    """429, or an order waited longer than 5 s in our own limiter.

    `retry_after` is the venue's ``Retry-After`` in seconds, when it sent one.
    """

    code = "RATE_LIMITED"
    http_status = 429
    retryable = True

    def __init__(
        self,
        message: str = "",
        *,
        broker: str = "",
        retry_after: float | None = None,
        retryable: bool | None = None,
        trips_breaker: bool | None = None,
    ) -> None:
        super().__init__(message, broker=broker, retryable=retryable, trips_breaker=trips_breaker)
        self.retry_after = retry_after


class InvalidOrderError(ConnectorError):
    """400: the order is malformed for the venue (tick, lot, type, time in force)."""

    code = "INVALID_ORDER"
    http_status = 400


class InsufficientFundsError(ConnectorError):
    """The account cannot pay for the order; the bot pauses (`insufficient_funds`)."""

    code = "INSUFFICIENT_FUNDS"
    http_status = 403


class OrderRejectedError(ConnectorError):
    """The venue refused a well-formed order for a business reason."""

    code = "ORDER_REJECTED"
    http_status = 422


class PdtViolationError(OrderRejectedError):
    """The order would be a 4th day trade in 5 business days on a PDT-restricted account."""

    code = "PDT_VIOLATION"


class MarketClosedError(ConnectorError):
    """The market is closed for this order (session, holiday, extended hours not allowed)."""

    code = "MARKET_CLOSED"
    http_status = 422


class OrderNotFoundError(ConnectorError):
    """404: no order with that client or exchange id."""

    code = "ORDER_NOT_FOUND"
    http_status = 404


class ExchangeUnavailableError(ConnectorError):
    """5xx or connection refused: retry idempotent calls; counts towards the breaker."""

    code = "EXCHANGE_UNAVAILABLE"
    http_status = 503
    retryable = True
    trips_breaker = True


class RequestTimeoutError(ConnectorError):
    """No answer in time; counts towards the breaker.

    `retryable` concerns idempotent calls only: an order that timed out is never resent blind but
    resolved by its client order id.
    """

    code = "REQUEST_TIMEOUT"
    retryable = True
    trips_breaker = True


class CircuitOpenError(ConnectorError):
    """The venue's breaker is OPEN: the call failed fast without reaching the venue."""

    code = "CIRCUIT_OPEN"


class PacingViolationError(ConnectorError):
    """IBKR pacing breach: the venue locks the connection out (10 minutes by default).

    Not retryable: retrying inside the lockout only extends it. `retry_after` is the lockout.
    """

    code = "PACING_VIOLATION"

    def __init__(
        self,
        message: str = "",
        *,
        broker: str = "",
        retry_after: float | None = 600.0,
        retryable: bool | None = None,
        trips_breaker: bool | None = None,
    ) -> None:
        super().__init__(message, broker=broker, retryable=retryable, trips_breaker=trips_breaker)
        self.retry_after = retry_after


class SchemaMismatchError(ConnectorError):
    """The venue answered in a shape we do not understand (Sev2: the API changed)."""

    code = "SCHEMA_MISMATCH"


class HostNotAllowedError(ConnectorError):
    """A request aimed at a host outside the configured broker hosts (egress control)."""

    code = "HOST_NOT_ALLOWED"


# ------------------------------------------------------------------------------ engine errors


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a configuration: the field's dotted path ("" for the whole model)."""

    field: str
    message: str


class ConfigError(TradeTowerError, ValueError):
    """A configuration was refused.

    `message` is the complete human-readable text (it names the field itself); `field` is the
    dotted path of the first offending field ("" when the problem concerns the whole model);
    `issues` lists every problem found.
    """

    code = "INVALID_CONFIG"

    def __init__(self, field: str, message: str, *, issues: Sequence[ConfigIssue] = ()) -> None:
        self.field = field
        self.issues: tuple[ConfigIssue, ...] = tuple(issues) or (ConfigIssue(field, message),)
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return self.message


class DataValidationError(TradeTowerError, ValueError):
    """Input data (bars, fills, a CSV file) failed a check.

    `row` and `column` locate the problem for programs; ``str()`` puts them in front of the
    message: ``"row 17: high < low (high=1.0, low=2.0)"``, ``"row 17, column 'volume': ..."``.
    A message that already names its row (``"row 17 (2024-01-02): ..."``, or a re-raise that
    wraps ``str()`` of another one) is left as it is, so the location never appears twice.
    """

    code = "INVALID_DATA"

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None) -> None:
        self.message = message
        self.row = row
        self.column = column
        super().__init__(message)

    def __str__(self) -> str:
        if self.row is not None and re.search(rf"\brow {self.row}\b", self.message):
            return self.message
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None and f"column {self.column!r}" not in self.message:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class TenantRequiredError(TradeTowerError):
    """A repository method was called without a tenant context (`TENANT_ID_REQUIRED`)."""

    code = "TENANT_ID_REQUIRED"

    def __init__(self, message: str = "a tenant context is required") -> None:
        self.message = message
        super().__init__(message)
