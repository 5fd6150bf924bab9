"""The exception tree of PLATFORM.md §2 "Errors" and the engine's own errors."""

from __future__ import annotations

import pickle

import pytest

from tradetower import errors as e

CONNECTOR_ERRORS = [
    e.AuthenticationError,
    e.SessionExpiredError,
    e.PermissionDeniedError,
    e.RateLimitedError,
    e.InvalidOrderError,
    e.InsufficientFundsError,
    e.OrderRejectedError,
    e.PdtViolationError,
    e.MarketClosedError,
    e.OrderNotFoundError,
    e.ExchangeUnavailableError,
    e.RequestTimeoutError,
    e.CircuitOpenError,
    e.PacingViolationError,
    e.SchemaMismatchError,
    e.HostNotAllowedError,
]

# (retryable, trips_breaker) per class, from the spec: only 5xx/refused and timeouts trip the
# breaker; transient conditions (expired session, rate limit, outage, timeout) may be retried.
EXPECTED_FLAGS = {
    e.AuthenticationError: (False, False),
    e.SessionExpiredError: (True, False),
    e.PermissionDeniedError: (False, False),
    e.RateLimitedError: (True, False),
    e.InvalidOrderError: (False, False),
    e.InsufficientFundsError: (False, False),
    e.OrderRejectedError: (False, False),
    e.PdtViolationError: (False, False),
    e.MarketClosedError: (False, False),
    e.OrderNotFoundError: (False, False),
    e.ExchangeUnavailableError: (True, True),
    e.RequestTimeoutError: (True, True),
    e.CircuitOpenError: (False, False),
    e.PacingViolationError: (False, False),
    e.SchemaMismatchError: (False, False),
    e.HostNotAllowedError: (False, False),
}


@pytest.mark.parametrize("cls", CONNECTOR_ERRORS, ids=lambda c: c.__name__)
def test_flags_per_class(cls: type[e.ConnectorError]) -> None:
    err = cls("boom", broker="alpaca")
    assert isinstance(err, e.ConnectorError) and isinstance(err, e.TradeTowerError)
    assert (err.retryable, err.trips_breaker) == EXPECTED_FLAGS[cls]
    assert err.broker == "alpaca"
    assert str(err) == "[alpaca] boom"


def test_no_4xx_trips_the_breaker() -> None:
    four_xx = [c for c in CONNECTOR_ERRORS if c.http_status is not None and c.http_status < 500]
    assert len(four_xx) >= 8
    assert not [c for c in four_xx if c("x").trips_breaker]
    assert [c for c in CONNECTOR_ERRORS if c("x").trips_breaker] == [
        e.ExchangeUnavailableError,
        e.RequestTimeoutError,
    ]


def test_instance_can_override_class_defaults() -> None:
    err = e.InvalidOrderError("odd venue", retryable=True, trips_breaker=True)
    assert err.retryable and err.trips_breaker
    assert not e.InvalidOrderError("plain").retryable  # the class default is untouched


def test_pdt_violation_is_an_order_rejection() -> None:
    with pytest.raises(e.OrderRejectedError):
        raise e.PdtViolationError("4th day trade in 5 days")


def test_rate_limit_and_pacing_carry_retry_after() -> None:
    assert e.RateLimitedError("slow down", retry_after=2.5).retry_after == 2.5
    assert e.RateLimitedError("slow down").retry_after is None
    assert e.PacingViolationError("pacing").retry_after == 600.0


def test_connector_errors_pickle_with_their_fields() -> None:
    err = e.RateLimitedError("429", broker="coinbase", retry_after=1.5, trips_breaker=True)
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is e.RateLimitedError
    assert (copy.broker, copy.retry_after, copy.retryable, copy.trips_breaker) == (
        "coinbase",
        1.5,
        True,
        True,
    )
    assert str(copy) == "[coinbase] 429"


def test_message_without_broker() -> None:
    assert str(e.OrderNotFoundError("no order tt-1-BASE-1")) == "no order tt-1-BASE-1"
    assert str(e.CircuitOpenError()) == "CircuitOpenError"


def test_data_validation_message_names_the_row() -> None:
    err = e.DataValidationError("high < low (high=1.0, low=2.0)", row=17)
    assert str(err) == "row 17: high < low (high=1.0, low=2.0)"
    assert (err.row, err.column) == (17, None)
    assert isinstance(err, ValueError) and isinstance(err, e.TradeTowerError)


def test_data_validation_message_with_column_or_neither() -> None:
    assert str(e.DataValidationError("negative", row=3, column="volume")) == (
        "row 3, column 'volume': negative"
    )
    assert str(e.DataValidationError("unparseable", column="timestamp")) == (
        "column 'timestamp': unparseable"
    )
    assert str(e.DataValidationError("no bars")) == "no bars"


def test_data_validation_location_is_not_repeated() -> None:
    inner = e.DataValidationError("high < low", row=4, column="high")
    wrapped = e.DataValidationError(f"bars.csv: {inner}", row=inner.row, column=inner.column)
    assert str(wrapped) == "bars.csv: row 4, column 'high': high < low"
    # a row number that merely starts with the same digits is not the same row
    assert str(e.DataValidationError("row 41 too", row=4)) == "row 4: row 41 too"


def test_config_error_fields() -> None:
    err = e.ConfigError("grid_levels", "grid_levels: must be ≥ 5 (got 2)")
    assert err.field == "grid_levels"
    assert str(err) == "grid_levels: must be ≥ 5 (got 2)"
    assert err.issues == (e.ConfigIssue("grid_levels", "grid_levels: must be ≥ 5 (got 2)"),)
    assert isinstance(err, ValueError)


def test_tenant_required_has_spec_code() -> None:
    err = e.TenantRequiredError()
    assert err.code == "TENANT_ID_REQUIRED"
    assert "tenant" in str(err)
