"""Typed, frozen, strict configuration models (DESIGN.md "Conventions", STYLE.md habit 7).

Every configuration in TradeTower (a bot's parameters, risk limits, a backtest request) derives
from `FrozenConfig`:

- instances are immutable (`frozen`), defaults are validated too;
- unknown fields are refused, with a message that names them;
- validation is *strict-ish*: pydantic's lax coercions stay where a value has a canonical text
  form (enums, `Decimal`, dates and times, so a JSON or YAML file validates), but numbers and
  booleans are never read from text, and a boolean is never taken for a number;
- NaN and infinities are refused;
- `json_schema()` is the schema the HTTP API and the dashboard forms reuse;
- `parse()` turns pydantic's `ValidationError` into a `ConfigError` that names the field and the
  constraint, e.g. ``grid_levels: must be ≥ 5 and ≤ 100 (got 2)``.

`apply_overrides` reads the CLI's ``--set key=value`` pairs.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Iterable, Mapping
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Literal, Self, TypeVar, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticCustomError

from tradetower.errors import ConfigError, ConfigIssue

__all__ = ["FrozenConfig", "apply_overrides", "config_error", "parse_overrides"]

C = TypeVar("C", bound="FrozenConfig")


class FrozenConfig(BaseModel):
    """Base of every TradeTower configuration: frozen, strict-ish, unknown fields refused."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_default=True,
        allow_inf_nan=False,
        validate_by_name=True,
        validate_by_alias=True,
        loc_by_alias=False,
        use_attribute_docstrings=True,
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_lossy_coercion(cls, value: Any, info: ValidationInfo) -> Any:
        """Refuse text for numbers and booleans, and booleans for numbers."""
        if info.field_name is None or not isinstance(value, (str, bool)):
            return value  # (the common case first: sweeps parse many thousands of configs)
        field = cls.model_fields.get(info.field_name)
        kind = _scalar_kind(field.annotation) if field is not None else None
        if kind is None:
            return value
        if isinstance(value, str):
            wanted = "true or false" if kind == "bool" else kind
            raise PydanticCustomError("text_not_accepted", f"must be {wanted}, not text")
        if isinstance(value, bool) and kind != "bool":
            raise PydanticCustomError("bool_not_accepted", f"must be {kind}, not a boolean")
        return value

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON schema of this configuration (validation mode: what may be sent in)."""
        return cls.model_json_schema(mode="validation")

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Self:
        """Validate `data` into an instance.

        Raises:
            ConfigError: one message per problem, each naming its field and the constraint.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(
                "", f"{cls.__name__}: expected a mapping of fields, got {type(data).__name__}"
            )
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise config_error(cls, exc) from None

    def replace(self, **changes: Any) -> Self:
        """A validated copy with `changes` applied (``model_copy`` would skip validation)."""
        return self.parse({**self.model_dump(), **changes})


# ------------------------------------------------------------------------ error messages


def config_error(model_cls: type[BaseModel], exc: ValidationError) -> ConfigError:
    """Translate pydantic's `ValidationError` for `model_cls` into a `ConfigError`."""
    issues = [_issue(model_cls, err) for err in exc.errors(include_url=False)]
    first = issues[0] if issues else ConfigIssue("", str(exc))
    message = "; ".join(i.message for i in issues) if issues else first.message
    return ConfigError(first.field, message, issues=issues)


_BOUND_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})
_SHOULD = re.compile(
    r"^(?:Input|String|Bytes|List|Tuple|Set|Frozenset|Dictionary|Value|Decimal input|Data) should "
)


def _issue(model_cls: type[BaseModel], err: ErrorDetails) -> ConfigIssue:
    loc = err["loc"]
    path = _path(loc)
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if kind == "extra_forbidden":
        valid = _valid_fields(_model_at(model_cls, loc[:-1]))
        known = f" (valid fields: {', '.join(valid)})" if valid else ""
        return ConfigIssue(path, f"unknown field '{path}'{known}")
    if kind == "missing":
        return ConfigIssue(path, f"{path}: required")
    if kind in _BOUND_ERRORS:
        text = _bounds_text(_field_at(model_cls, loc), ctx)
    elif kind in ("enum", "literal_error"):
        text = f"must be one of {ctx.get('expected', '?')}"
    else:
        text = err["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            text = text.removeprefix(prefix)
        replaced = _SHOULD.sub("must ", text)
        text = replaced if replaced != text else text[:1].lower() + text[1:]
    if loc and not isinstance(value, Mapping | BaseModel):
        text = f"{text} (got {_show(value)})"
    return ConfigIssue(path, f"{path}: {text}" if path else text)


def _bounds_text(field: FieldInfo | None, ctx: Mapping[str, Any]) -> str:
    """``must be ≥ 5 and ≤ 100`` from the field's declared bounds (else from the error)."""
    bounds: dict[str, Any] = {}
    for meta in field.metadata if field is not None else ():
        if isinstance(meta, annotated_types.Gt):
            bounds["gt"] = meta.gt
        elif isinstance(meta, annotated_types.Ge):
            bounds["ge"] = meta.ge
        elif isinstance(meta, annotated_types.Lt):
            bounds["lt"] = meta.lt
        elif isinstance(meta, annotated_types.Le):
            bounds["le"] = meta.le
    for key in ("gt", "ge", "lt", "le"):
        if key in ctx:
            bounds.setdefault(key, ctx[key])
    parts = [
        f"{symbol} {_show(bounds[key])}"
        for key, symbol in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"))
        if key in bounds
    ]
    return "must be " + " and ".join(parts)


def _show(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float | Decimal):
        return str(value)
    return repr(value)


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _unwrap(annotation: Any) -> list[Any]:
    """The members of a (possibly Optional/Annotated) annotation, ``None`` dropped."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [m for arg in get_args(annotation) for m in _unwrap(arg)]
    return [] if annotation is type(None) else [annotation]


def _scalar_kind(annotation: Any) -> str | None:
    """'an integer', 'a number' or 'bool' when every member of `annotation` is that scalar."""
    members = _unwrap(annotation)
    if not members:
        return None
    if all(m is bool for m in members):
        return "bool"
    if all(m is int for m in members):
        return "an integer"
    if all(m is int or m is float for m in members):
        return "a number"
    return None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for member in _unwrap(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None


def _model_at(
    model_cls: type[BaseModel] | None, loc: tuple[int | str, ...]
) -> type[BaseModel] | None:
    """The model class found at `loc` inside `model_cls`, following nested model fields."""
    current = model_cls
    for part in loc:
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            return None
        current = _model_in(current.model_fields[part].annotation)
    return current


def _field_at(model_cls: type[BaseModel], loc: tuple[int | str, ...]) -> FieldInfo | None:
    if not loc or not isinstance(loc[-1], str):
        return None
    owner = _model_at(model_cls, loc[:-1])
    return None if owner is None else owner.model_fields.get(loc[-1])


def _valid_fields(model_cls: type[BaseModel] | None) -> list[str]:
    return sorted(model_cls.model_fields) if model_cls is not None else []


# ---------------------------------------------------------------------------- CLI overrides


def _is_text(annotation: Any) -> bool:
    """Whether a field takes text (str, a str-valued enum or literal), so '123' stays '123'."""
    members = _unwrap(annotation)
    if not members:
        return False
    for member in members:
        if member is str:
            continue
        if isinstance(member, type) and issubclass(member, Enum):
            if all(isinstance(e.value, str) for e in member):
                continue
            return False
        if get_origin(member) is Literal and all(isinstance(a, str) for a in get_args(member)):
            continue
        return False
    return True


def _resolve(model_cls: type[BaseModel], name: str) -> str | None:
    """The field name for `name`, which may be the field's name or its alias."""
    if name in model_cls.model_fields:
        return name
    for field_name, info in model_cls.model_fields.items():
        if name in (info.alias, info.validation_alias):
            return field_name
    return None


def parse_overrides(model_cls: type[BaseModel], pairs: Iterable[str]) -> dict[str, Any]:
    """Read ``key=value`` pairs into a nested mapping of field names.

    A value is parsed as JSON when it can be (``50``, ``0.5``, ``true``, ``null``, ``[1, 2]``),
    else kept as text; a text field keeps the raw text (``label=123`` is ``"123"``). A dotted key
    (``risk.max_leverage=3``) reaches into a nested configuration. Keys may be field names or
    aliases; a later pair for the same key wins.

    Raises:
        ConfigError: a pair without ``=``, or a key that names no field (the valid ones listed).
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(key, f"override {pair!r} must look like key=value")
        names, info = _field_path(model_cls, key)
        target = out
        for name in names[:-1]:
            nested = target.get(name)
            if not isinstance(nested, dict):
                nested = target[name] = {}
            target = nested
        target[names[-1]] = _override_value(raw, info)
    return out


def _field_path(model_cls: type[BaseModel], key: str) -> tuple[list[str], FieldInfo]:
    """The field names along dotted `key`, and the last field's info."""
    owner: type[BaseModel] | None = model_cls
    names: list[str] = []
    info: FieldInfo | None = None
    for part in key.split("."):
        if owner is None:
            raise ConfigError(key, f"'{'.'.join(names)}' has no sub-fields (in '{key}')")
        name = _resolve(owner, part)
        if name is None:
            scope = f" in '{'.'.join(names)}'" if names else ""
            raise ConfigError(
                key,
                f"unknown field '{key}'{scope} for {model_cls.__name__} "
                f"(valid fields: {', '.join(_valid_fields(owner))})",
            )
        names.append(name)
        info = owner.model_fields[name]
        owner = _model_in(info.annotation)
    assert info is not None  # key.split always yields at least one part
    return names, info


def _override_value(raw: str, info: FieldInfo) -> Any:
    text = raw.strip()
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if value is not None and not isinstance(value, str) and _is_text(info.annotation):
        return text
    return value


def _merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def apply_overrides(
    model_cls: type[C], pairs: Iterable[str], base: Mapping[str, Any] | C | None = None
) -> C:
    """Build `model_cls` from `base` (a mapping or an instance; defaults when ``None``) with the
    ``--set key=value`` `pairs` applied, and validate it.

    Raises:
        ConfigError: a malformed pair, an unknown key, or a value the model refuses.
    """
    if isinstance(base, BaseModel):
        start: dict[str, Any] = base.model_dump()
    else:
        start = {}
        for key, value in (base or {}).items():
            start[_resolve(model_cls, key) or key] = value
    return model_cls.parse(_merge(start, parse_overrides(model_cls, pairs)))
