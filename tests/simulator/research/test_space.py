"""Parameter spaces: specs parsed into typed values, refused against the config model."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import random_walk

from simulator.research.runner import run_sweep
from simulator.research.space import parse_space
from strategies import strategy_class
from tradetower.errors import ConfigError

SIMPLE = strategy_class("simple_grid").Config
GRID = strategy_class("grid").Config


def values(spec: str, model: type = SIMPLE) -> tuple[object, ...]:
    (dim,) = parse_space(model, [spec]).dimensions
    assert dim.values is not None
    return dim.values


def test_a_stepped_range_includes_both_ends_with_the_field_type() -> None:
    assert values("grid_levels=20:80:10") == (20, 30, 40, 50, 60, 70, 80)
    assert all(type(v) is int for v in values("grid_levels=20:80:10"))
    assert values("grid_levels=20:85:10") == (20, 30, 40, 50, 60, 70, 80)


def test_a_float_step_gives_the_decimal_values_not_accumulated_error() -> None:
    assert values("low_price=0.08:0.1:0.005") == (0.08, 0.085, 0.09, 0.095, 0.1)


def test_lists_take_the_field_type_enums_and_booleans() -> None:
    assert values("investment=100,250.5") == (100.0, 250.5)
    assert all(type(v) is float for v in values("investment=100,250.5"))
    assert values("order_size_currency=QUOTE,BASE", GRID) == ("QUOTE", "BASE")
    assert values("trailing_up=true,false", GRID) == (True, False)
    assert values("gridLevels=5,6", GRID) == (5, 6)  # an alias names its field


def test_a_continuous_range_is_for_sampling_not_for_a_grid() -> None:
    space = parse_space(SIMPLE, ["low_price=0.08:0.09", "grid_levels=5:60"])
    low, levels = space.dimensions
    assert (low.low, low.high, low.values) == (0.08, 0.09, None)
    assert (levels.kind, levels.low, levels.high) == ("int", 5.0, 60.0)
    with pytest.raises(ConfigError, match="low_price: a continuous range has no grid"):
        space.grid()
    draws = space.sample(50, seed=3)
    assert draws == space.sample(50, seed=3)
    assert draws != space.sample(50, seed=4)
    assert all(0.08 <= d["low_price"] <= 0.09 for d in draws)
    assert all(type(d["grid_levels"]) is int and 5 <= d["grid_levels"] <= 60 for d in draws)


def test_the_grid_is_the_cartesian_product_first_dimension_slowest() -> None:
    space = parse_space(SIMPLE, {"grid_levels": [5, 6], "low_price": "1,2,3"})
    assert space.grid() == [
        {"grid_levels": 5, "low_price": 1.0},
        {"grid_levels": 5, "low_price": 2.0},
        {"grid_levels": 5, "low_price": 3.0},
        {"grid_levels": 6, "low_price": 1.0},
        {"grid_levels": 6, "low_price": 2.0},
        {"grid_levels": 6, "low_price": 3.0},
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "grid_levels=2:10:1",
            "grid_levels: 2 is outside the field's range (≥ 3 and ≤ 200) in '2:10:1'",
        ),
        (
            "grid_levels=150,250",
            "grid_levels: 250 is outside the field's range (≥ 3 and ≤ 200) in '150,250'",
        ),
        ("low_price=0:1", "low_price: 0 is outside the field's range (> 0) in '0:1'"),
        ("grid_levels=2.5,3", "grid_levels: must be an integer (got 2.5)"),
        ("grid_levels=x,3", "grid_levels: must be an integer (got 'x')"),
        ("grid_levels=10:5:1", "grid_levels: '10:5:1' must go from low to high"),
        ("grid_levels=5:10:0", "grid_levels: the step in '5:10:0' must be > 0"),
        ("grid_levels", "grid 'grid_levels' must look like name=spec"),
        (
            "levels=5,6",
            "unknown field 'levels' for SimpleGridConfig (valid fields: grid_levels, "
            "high_price, investment, low_price)",
        ),
    ],
)
def test_bad_specs_are_refused_naming_the_field(spec: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_space(SIMPLE, [spec])
    assert str(err.value) == message


def test_an_enum_value_outside_its_choices_is_refused() -> None:
    with pytest.raises(ConfigError) as err:
        parse_space(GRID, ["order_size_currency=QUOTE,EUR"])
    assert str(err.value) == (
        "order_size_currency: EUR is outside the field's range (one of QUOTE, BASE) in 'QUOTE,EUR'"
    )
    assert err.value.field == "order_size_currency"


def test_a_refused_space_stops_the_sweep_before_anything_runs(tmp_path: Path) -> None:
    folder = tmp_path / "sweep"
    with pytest.raises(ConfigError, match="grid_levels: 1 is outside"):
        run_sweep(
            "simple_grid",
            ["grid_levels=1,5"],
            random_walk(200),
            base={"low_price": 90.0, "high_price": 110.0},
            folder=folder,
            progress=False,
        )
    assert not folder.exists()
