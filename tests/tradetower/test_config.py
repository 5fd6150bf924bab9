"""FrozenConfig: frozen, strict-ish, readable errors, JSON schema, CLI overrides."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Literal

import pytest
from pydantic import Field, ValidationError, model_validator

from tradetower.config import FrozenConfig, apply_overrides, parse_overrides
from tradetower.errors import ConfigError


class Spacing(StrEnum):
    GEOMETRIC = "GEOMETRIC"
    ARITHMETIC = "ARITHMETIC"


class Risk(FrozenConfig):
    max_leverage: int = Field(default=1, ge=1, le=10)


class GridLike(FrozenConfig):
    grid_levels: int = Field(ge=5, le=100, alias="gridLevels")
    """Number of price levels."""
    low_price: float = Field(gt=0)
    high_price: float = Field(gt=0)
    investment: Decimal = Decimal("1000")
    spacing: Spacing = Spacing.GEOMETRIC
    side: Literal["LONG", "SHORT"] = "LONG"
    label: str = ""
    pump_protection: bool = False
    stop_loss_pct: float | None = None
    risk: Risk = Risk()

    @model_validator(mode="after")
    def _range(self) -> GridLike:
        if self.low_price >= self.high_price:
            raise ValueError("low_price must be below high_price")
        return self


GOOD = {"grid_levels": 50, "low_price": 90, "high_price": 110}


def parse_error(data: dict[str, object]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        GridLike.parse(data)
    return info.value


def test_parse_builds_typed_values_from_plain_data() -> None:
    cfg = GridLike.parse({**GOOD, "investment": "250.5", "spacing": "ARITHMETIC"})
    assert cfg.grid_levels == 50 and cfg.low_price == 90.0
    assert cfg.investment == Decimal("250.5")
    assert cfg.spacing is Spacing.ARITHMETIC
    assert GridLike.parse({"gridLevels": 7, "low_price": 1, "high_price": 2}).grid_levels == 7


def test_instances_are_frozen() -> None:
    cfg = GridLike.parse(GOOD)
    with pytest.raises(ValidationError):
        cfg.grid_levels = 10  # type: ignore[misc]
    assert cfg.grid_levels == 50


def test_replace_validates() -> None:
    cfg = GridLike.parse(GOOD)
    assert cfg.replace(grid_levels=60).grid_levels == 60
    with pytest.raises(ConfigError, match="grid_levels: must be ≥ 5 and ≤ 100 \\(got 200\\)"):
        cfg.replace(grid_levels=200)


def test_unknown_field_is_named() -> None:
    err = parse_error({**GOOD, "foo": 1})
    assert err.field == "foo"
    assert "unknown field 'foo'" in str(err)
    assert "grid_levels" in str(err)  # the valid fields are listed


def test_unknown_nested_field_is_named_with_its_path() -> None:
    err = parse_error({**GOOD, "risk": {"max_leverage": 2, "lev": 3}})
    assert err.field == "risk.lev"
    assert "unknown field 'risk.lev' (valid fields: max_leverage)" in str(err)


def test_range_message_names_field_and_both_bounds() -> None:
    err = parse_error({**GOOD, "grid_levels": 2})
    assert str(err) == "grid_levels: must be ≥ 5 and ≤ 100 (got 2)"
    assert err.field == "grid_levels"


def test_exclusive_bound_and_nested_range() -> None:
    assert str(parse_error({**GOOD, "low_price": 0})) == "low_price: must be > 0 (got 0)"
    err = parse_error({**GOOD, "risk": {"max_leverage": 20}})
    assert str(err) == "risk.max_leverage: must be ≥ 1 and ≤ 10 (got 20)"


def test_every_problem_is_reported() -> None:
    err = parse_error({"grid_levels": 500, "low_price": 1, "spacing": "LOG"})
    fields = [issue.field for issue in err.issues]
    assert fields == ["grid_levels", "high_price", "spacing"]
    assert "high_price: required" in str(err)
    assert "spacing: must be one of 'GEOMETRIC' or 'ARITHMETIC' (got 'LOG')" in str(err)


def test_model_level_rule_message() -> None:
    err = parse_error({**GOOD, "low_price": 120})
    assert err.field == ""
    assert str(err) == "low_price must be below high_price"


@pytest.mark.parametrize(
    ("field", "value", "text"),
    [
        ("grid_levels", "50", "grid_levels: must be an integer, not text"),
        ("low_price", "90", "low_price: must be a number, not text"),
        ("pump_protection", "yes", "pump_protection: must be true or false, not text"),
        ("grid_levels", True, "grid_levels: must be an integer, not a boolean"),
        ("stop_loss_pct", "5", "stop_loss_pct: must be a number, not text"),
        ("grid_levels", 50.5, "grid_levels: must be a valid integer"),
        ("low_price", float("nan"), "low_price: must be a finite number"),
        ("label", 5, "label: must be a valid string"),
    ],
)
def test_strict_ish_refuses_lossy_coercions(field: str, value: object, text: str) -> None:
    err = parse_error({**GOOD, field: value})
    assert err.field == field
    assert str(err).startswith(text)


def test_parse_refuses_non_mappings() -> None:
    with pytest.raises(ConfigError, match="expected a mapping"):
        GridLike.parse([("grid_levels", 5)])  # type: ignore[arg-type]


def test_json_schema_lists_fields_constraints_and_docs() -> None:
    schema = GridLike.json_schema()
    props = schema["properties"]
    assert {"gridLevels", "low_price", "high_price", "spacing", "risk"} <= set(props)
    assert props["gridLevels"]["minimum"] == 5 and props["gridLevels"]["maximum"] == 100
    assert props["gridLevels"]["description"] == "Number of price levels."
    assert props["low_price"]["exclusiveMinimum"] == 0
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"gridLevels", "low_price", "high_price"}
    assert schema["$defs"]["Spacing"]["enum"] == ["GEOMETRIC", "ARITHMETIC"]


# ------------------------------------------------------------------------------ overrides


def test_apply_overrides_parses_json_values() -> None:
    cfg = apply_overrides(
        GridLike,
        [
            "grid_levels=50",
            "low_price=90.5",
            "high_price=110",
            "pump_protection=true",
            "stop_loss_pct=null",
            "spacing=ARITHMETIC",
            "side=SHORT",
            "investment=1500.25",
        ],
    )
    assert cfg.grid_levels == 50
    assert cfg.low_price == 90.5
    assert cfg.pump_protection is True
    assert cfg.stop_loss_pct is None
    assert cfg.spacing is Spacing.ARITHMETIC
    assert cfg.side == "SHORT"
    assert cfg.investment == Decimal("1500.25")


def test_text_fields_keep_raw_text() -> None:
    values = parse_overrides(GridLike, ["label=123", "spacing=GEOMETRIC", "label= BTC/USD "])
    assert values == {"label": "BTC/USD", "spacing": "GEOMETRIC"}
    assert parse_overrides(GridLike, ["label=123"]) == {"label": "123"}
    assert parse_overrides(GridLike, ['label="quoted"']) == {"label": "quoted"}


def test_overrides_apply_on_a_base_and_reach_nested_fields() -> None:
    base = GridLike.parse(GOOD)
    cfg = apply_overrides(GridLike, ["risk.max_leverage=3", "gridLevels=60"], base=base)
    assert cfg.risk.max_leverage == 3
    assert cfg.grid_levels == 60
    assert cfg.low_price == base.low_price
    from_mapping = apply_overrides(GridLike, ["low_price=95"], base={**GOOD, "gridLevels": 40})
    assert (from_mapping.grid_levels, from_mapping.low_price) == (40, 95.0)


def test_unknown_override_key_lists_valid_fields() -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides(GridLike, ["levels=50"], base=GOOD)
    assert info.value.field == "levels"
    message = str(info.value)
    assert "unknown field 'levels'" in message
    assert "grid_levels" in message and "low_price" in message
    with pytest.raises(ConfigError, match="valid fields: max_leverage"):
        apply_overrides(GridLike, ["risk.leverage=2"], base=GOOD)
    with pytest.raises(ConfigError, match="has no sub-fields"):
        apply_overrides(GridLike, ["label.x=2"], base=GOOD)


def test_malformed_pair_and_bad_value() -> None:
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(GridLike, ["grid_levels"])
    with pytest.raises(ConfigError, match=r"grid_levels: must be ≥ 5 and ≤ 100 \(got 2\)"):
        apply_overrides(GridLike, ["grid_levels=2"], base=GOOD)
    with pytest.raises(ConfigError, match="grid_levels: must be an integer, not text"):
        apply_overrides(GridLike, ["grid_levels=fifty"], base=GOOD)
