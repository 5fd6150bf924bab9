"""Parameter spaces declared against a strategy's config model.

A dimension is written ``name=SPEC``:

- ``lo:hi:step``: the values lo, lo+step, ... up to hi inclusive (decimal arithmetic, so
  ``0.08:0.1:0.005`` gives 0.085, not 0.08500000000000001);
- ``a,b,c``: exactly these values (one value fixes the parameter);
- ``lo:hi``: a continuous range, for random sampling and Optuna only (an integer field draws
  integers in [lo, hi]).

Each value's type comes from the field (integer, number, boolean, text or enum) and every value,
or both ends of a range, is checked against the field's declared bounds before anything runs,
so a sweep never starts with a combination the model would refuse one by one.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from tradetower.errors import ConfigError

Kind = Literal["int", "float", "bool", "text"]
MAX_VALUES = 1_000_000
"""Most values one stepped range may expand to (a typo like ``0:1e9:1`` fails fast)."""
_KINDS: dict[str, Kind] = {"integer": "int", "number": "float", "boolean": "bool", "string": "text"}


@dataclass(frozen=True)
class FieldRule:
    """What a config field accepts: its value kind, numeric bounds and allowed choices."""

    name: str
    kind: Kind
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[Any, ...] | None = None

    def describe(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        parts = [
            f"{symbol} {_num(bound)}"
            for bound, symbol in ((self.ge, "≥"), (self.gt, ">"), (self.le, "≤"), (self.lt, "<"))
            if bound is not None
        ]
        return " and ".join(parts) if parts else "any value"

    def admits(self, value: Any) -> bool:
        if self.choices is not None:
            return value in self.choices
        if self.kind in ("bool", "text"):
            return True
        v = float(value)
        return not (
            (self.ge is not None and v < self.ge)
            or (self.gt is not None and v <= self.gt)
            or (self.le is not None and v > self.le)
            or (self.lt is not None and v >= self.lt)
        )


@dataclass(frozen=True)
class Dimension:
    """One swept parameter: discrete ``values``, or a continuous range ``low``..``high``."""

    name: str
    kind: Kind
    spec: str
    values: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None

    @property
    def is_discrete(self) -> bool:
        return self.values is not None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"spec": self.spec, "kind": self.kind}
        if self.values is not None:
            out["values"] = list(self.values)
        else:
            out["low"], out["high"] = self.low, self.high
        return out


@dataclass(frozen=True)
class Space:
    """An ordered set of dimensions; combinations are plain ``{name: value}`` dicts."""

    dimensions: tuple[Dimension, ...]

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dimensions]

    def grid(self) -> list[dict[str, Any]]:
        """The Cartesian product, the first dimension varying slowest."""
        ranges = [d.name for d in self.dimensions if not d.is_discrete]
        if ranges:
            raise ConfigError(
                ranges[0],
                f"{ranges[0]}: a continuous range has no grid; give a step (lo:hi:step) or use "
                "--method random or optuna",
            )
        values = [d.values or () for d in self.dimensions]
        return [dict(zip(self.names, combo, strict=True)) for combo in itertools.product(*values)]

    def sample(self, n: int, seed: int) -> list[dict[str, Any]]:
        """``n`` combinations drawn independently per dimension from ``seed``."""
        if n < 1:
            raise ConfigError("trials", f"trials: must be ≥ 1 (got {n})")
        rng = np.random.default_rng(seed)
        columns = {d.name: _draw(d, rng, n) for d in self.dimensions}
        return [{name: columns[name][j] for name in self.names} for j in range(n)]

    def size(self) -> int | None:
        """Number of grid combinations (``None`` when a dimension is continuous)."""
        if not all(d.is_discrete for d in self.dimensions):
            return None
        return int(np.prod([len(d.values or ()) for d in self.dimensions]))

    def to_json(self) -> dict[str, Any]:
        return {d.name: d.to_json() for d in self.dimensions}


def _draw(dim: Dimension, rng: np.random.Generator, n: int) -> list[Any]:
    if dim.values is not None:
        picks = rng.integers(0, len(dim.values), size=n)
        return [dim.values[int(j)] for j in picks]
    assert dim.low is not None and dim.high is not None
    if dim.kind == "int":
        return [int(v) for v in rng.integers(int(dim.low), int(dim.high), size=n, endpoint=True)]
    return [float(v) for v in rng.uniform(dim.low, dim.high, size=n)]


# ------------------------------------------------------------------------ field rules


def field_rules(config_cls: type[BaseModel]) -> dict[str, FieldRule]:
    """Every scalar field of ``config_cls`` with its kind and bounds, from the JSON schema."""
    schema = config_cls.model_json_schema(mode="validation")
    defs = schema.get("$defs", {})
    rules: dict[str, FieldRule] = {}
    for name, prop in schema.get("properties", {}).items():
        options = [o for o in prop.get("anyOf", [prop]) if o.get("type") != "null"]
        if len(options) != 1:
            continue
        picked = options[0]
        if "$ref" in picked:
            picked = defs.get(picked["$ref"].rsplit("/", 1)[-1], {})
        kind = _KINDS.get(str(picked.get("type", "")))
        if kind is None:
            continue
        enum = picked.get("enum")
        rules[name] = FieldRule(
            name,
            kind,
            ge=picked.get("minimum"),
            gt=picked.get("exclusiveMinimum"),
            le=picked.get("maximum"),
            lt=picked.get("exclusiveMaximum"),
            choices=tuple(enum) if enum is not None else None,
        )
    return rules


def _field_name(config_cls: type[BaseModel], name: str) -> str | None:
    """The field called ``name``, by its own name or one of its aliases."""
    if name in config_cls.model_fields:
        return name
    for field_name, info in config_cls.model_fields.items():
        aliases = getattr(info.validation_alias, "choices", [info.validation_alias])
        if name == info.alias or name in aliases:
            return field_name
    return None


# ----------------------------------------------------------------------------- parsing


def parse_space(
    config_cls: type[BaseModel], dims: Iterable[str] | Mapping[str, Any] | Space
) -> Space:
    """A :class:`Space` from ``name=SPEC`` strings, or a mapping of name to a spec string or
    a sequence of values, validated against ``config_cls``.

    Raises:
        ConfigError: an unknown or non-scalar field, a malformed spec, a value of the wrong
            type, or a value outside the field's range (the field and its range named).
    """
    if isinstance(dims, Space):
        return dims
    pairs: list[tuple[str, str | Sequence[Any]]] = []
    if isinstance(dims, Mapping):
        pairs = [(str(k), v) for k, v in dims.items()]
    else:
        for text in dims:
            key, sep, value = text.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise ConfigError(key.strip(), f"grid {text!r} must look like name=spec")
            pairs.append((key.strip(), value.strip()))
    if not pairs:
        raise ConfigError("grid", "the parameter space is empty: give at least one name=spec")
    rules = field_rules(config_cls)
    out: list[Dimension] = []
    for raw_name, spec in pairs:
        name = _field_name(config_cls, raw_name)
        if name is None:
            valid = ", ".join(sorted(rules))
            raise ConfigError(
                raw_name,
                f"unknown field '{raw_name}' for {config_cls.__name__} (valid fields: {valid})",
            )
        if name in {d.name for d in out}:
            raise ConfigError(name, f"{name}: given twice in the parameter space")
        rule = rules.get(name)
        if rule is None:
            raise ConfigError(name, f"{name}: not a scalar field, so it cannot be swept")
        dim = _dimension(rule, spec)
        _check_range(rule, dim)
        out.append(dim)
    return Space(tuple(out))


def _dimension(rule: FieldRule, spec: str | Sequence[Any]) -> Dimension:
    if not isinstance(spec, str):
        values = tuple(_typed(rule, v, str(v)) for v in spec)
        if not values:
            raise ConfigError(rule.name, f"{rule.name}: no values given")
        return Dimension(rule.name, rule.kind, ",".join(str(v) for v in values), values=values)
    if ":" in spec:
        return _range(rule, spec)
    tokens = [t.strip() for t in spec.split(",")]
    if any(not t for t in tokens):
        raise ConfigError(rule.name, f"{rule.name}: empty value in '{spec}'")
    values = tuple(_typed(rule, _token(t), spec) for t in tokens)
    return Dimension(rule.name, rule.kind, spec, values=values)


def _range(rule: FieldRule, spec: str) -> Dimension:
    parts = [p.strip() for p in spec.split(":")]
    if len(parts) not in (2, 3) or rule.kind in ("bool", "text"):
        what = "lo:hi:step or lo:hi" if rule.kind in ("int", "float") else "a,b,c"
        raise ConfigError(rule.name, f"{rule.name}: '{spec}' must look like {what}")
    lo, hi = (_decimal(rule, p, spec) for p in parts[:2])
    if lo > hi or (len(parts) == 2 and lo == hi):
        raise ConfigError(rule.name, f"{rule.name}: '{spec}' must go from low to high")
    if len(parts) == 2:
        if rule.kind == "int" and (lo != lo.to_integral() or hi != hi.to_integral()):
            raise ConfigError(rule.name, f"{rule.name}: must be an integer (got '{spec}')")
        return Dimension(rule.name, rule.kind, spec, low=float(lo), high=float(hi))
    step = _decimal(rule, parts[2], spec)
    if step <= 0:
        raise ConfigError(rule.name, f"{rule.name}: the step in '{spec}' must be > 0")
    count = int((hi - lo) / step) + 1
    if count > MAX_VALUES:
        raise ConfigError(
            rule.name, f"{rule.name}: '{spec}' gives {count} values (at most {MAX_VALUES})"
        )
    values = tuple(_typed(rule, lo + j * step, spec) for j in range(count))
    return Dimension(rule.name, rule.kind, spec, values=values)


def _decimal(rule: FieldRule, text: str, spec: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ConfigError(
            rule.name, f"{rule.name}: '{text}' is not a number (in '{spec}')"
        ) from None
    if not value.is_finite():
        raise ConfigError(rule.name, f"{rule.name}: '{text}' is not a finite number")
    return value


def _token(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _typed(rule: FieldRule, value: Any, spec: str) -> Any:
    """``value`` as the field's Python type, or a ConfigError naming the field."""
    wrong = ConfigError(rule.name, f"{rule.name}: must be {_kind_text(rule)} (got {value!r})")
    if rule.kind == "text":
        return value if isinstance(value, str) else str(value)
    if rule.kind == "bool":
        if not isinstance(value, bool | np.bool_):
            raise wrong
        return bool(value)
    if isinstance(value, bool | np.bool_ | str):
        raise wrong
    number = Decimal(str(value)) if not isinstance(value, Decimal) else value
    if not number.is_finite():
        raise wrong
    if rule.kind == "int":
        if number != number.to_integral():
            raise wrong
        return int(number)
    return float(number)


def _kind_text(rule: FieldRule) -> str:
    return {"int": "an integer", "float": "a number", "bool": "true or false", "text": "text"}[
        rule.kind
    ]


def _check_range(rule: FieldRule, dim: Dimension) -> None:
    candidates = dim.values if dim.values is not None else (dim.low, dim.high)
    for value in candidates:
        if not rule.admits(value):
            raise ConfigError(
                rule.name,
                f"{rule.name}: {_show(value)} is outside the field's range "
                f"({rule.describe()}) in '{dim.spec}'",
            )


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _show(value: Any) -> str:
    if isinstance(value, float):
        return _num(value)
    return str(value)
