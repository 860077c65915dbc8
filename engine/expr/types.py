"""The small static type model of the expression language.

Every value may also be MISSING at run time (absent field or JSON null); the types describe the value
when it is present, so no type carries a separate "nullable" flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


class Type:
    """Base of every expression type. Use the singletons ANY, BOOL, NUMBER, INTEGER, STRING, DATETIME."""

    __slots__ = ()
    kind = "any"

    def describe(self) -> str:
        return self.kind

    def __str__(self) -> str:
        return self.describe()


@dataclass(frozen=True, repr=False)
class AnyType(Type):
    """A value whose type is not known statically (checked at run time)."""

    kind = "any"

    def __repr__(self) -> str:
        return "ANY"


@dataclass(frozen=True, repr=False)
class BoolType(Type):
    kind = "boolean"

    def __repr__(self) -> str:
        return "BOOL"


@dataclass(frozen=True, repr=False)
class NumberType(Type):
    """int or float; `integer=True` for the JSON Schema "integer" type."""

    integer: bool = False
    kind = "number"

    def describe(self) -> str:
        return "integer" if self.integer else "number"

    def __repr__(self) -> str:
        return "INTEGER" if self.integer else "NUMBER"


@dataclass(frozen=True, repr=False)
class StringType(Type):
    """str; `enum` lists the allowed values when the schema declares them.

    `pattern` (an RE2 regular expression, searched unanchored as JSON Schema does), `min_length` and
    `max_length` (in code points) carry the schema's other constraints on the value. They only serve the
    load-time literal check (a literal that can never be a value is rejected); they take no part in
    equality or hashing, so two strings differing only in them are the same type (see `join`).
    """

    enum: tuple[str, ...] | None = None
    pattern: str | None = field(default=None, compare=False)
    min_length: int | None = field(default=None, compare=False)
    max_length: int | None = field(default=None, compare=False)
    kind = "string"

    @property
    def constraints(self) -> tuple[str | None, int | None, int | None]:
        return (self.pattern, self.min_length, self.max_length)

    def describe(self) -> str:
        if self.enum:
            return "string (one of " + ", ".join(repr(v) for v in self.enum) + ")"
        return "string"

    def __repr__(self) -> str:
        return f"StringType(enum={self.enum!r})" if self.enum else "STRING"


@dataclass(frozen=True, repr=False)
class DateTimeType(Type):
    """A timezone-aware datetime (JSON Schema string with format date-time)."""

    kind = "datetime"

    def __repr__(self) -> str:
        return "DATETIME"


@dataclass(frozen=True)
class ListType(Type):
    """A list (a tuple at run time) of `item`; `max_items` is the schema's maxItems (for the cost bound only)."""

    item: Type = AnyType()
    max_items: int | None = field(default=None, compare=False)
    kind = "list"

    def describe(self) -> str:
        return f"list of {self.item.describe()}"


@dataclass(frozen=True)
class ObjectType(Type):
    """An object with declared properties; `open` when undeclared properties are allowed in the data.

    Expressions may only read declared properties (a typo is a load-time error), whatever `open` says.
    """

    props: Mapping[str, Type] = field(default_factory=dict)
    open: bool = True
    required: frozenset[str] = frozenset()
    kind = "object"

    def __hash__(self) -> int:
        return hash((tuple(self.props), self.open))

    def describe(self) -> str:
        return "object"


ANY = AnyType()
BOOL = BoolType()
NUMBER = NumberType()
INTEGER = NumberType(integer=True)
STRING = StringType()
DATETIME = DateTimeType()


def is_any(t: Type) -> bool:
    return isinstance(t, AnyType)


def is_number(t: Type) -> bool:
    return isinstance(t, NumberType)


def category(t: Type) -> str:
    """Comparison category: values of different categories never compare equal."""
    return t.kind


def assignable(actual: Type, want: Type) -> bool:
    """Can a value of type `actual` be used where `want` is expected?"""
    if is_any(actual) or is_any(want):
        return True
    if isinstance(want, NumberType):
        return isinstance(actual, NumberType) and (not want.integer or actual.integer)
    if isinstance(want, StringType):
        if not isinstance(actual, StringType):
            return False
        if want.enum is None:
            return True
        return actual.enum is not None and set(actual.enum) <= set(want.enum)
    if isinstance(want, ListType):
        return isinstance(actual, ListType) and assignable(actual.item, want.item)
    if isinstance(want, ObjectType):
        return isinstance(actual, ObjectType)
    return type(actual) is type(want)


def join(a: Type, b: Type) -> Type:
    """The least type covering both (ANY when unrelated)."""
    if a == b:
        return _common_constraints(a, b)
    if isinstance(a, NumberType) and isinstance(b, NumberType):
        return INTEGER if a.integer and b.integer else NUMBER
    if isinstance(a, StringType) and isinstance(b, StringType):
        if a.enum is not None and b.enum is not None:
            return StringType(tuple(dict.fromkeys(a.enum + b.enum)))
        return STRING
    if isinstance(a, ListType) and isinstance(b, ListType):
        return ListType(join(a.item, b.item))
    if isinstance(a, ObjectType) and isinstance(b, ObjectType):
        return ObjectType({}, True)
    return ANY


def _common_constraints(a: Type, b: Type) -> Type:
    """`a` (equal to `b`) keeping only the string constraints both sides share, at any depth."""
    if isinstance(a, StringType) and isinstance(b, StringType):
        return a if a.constraints == b.constraints else StringType(a.enum)
    if isinstance(a, ListType) and isinstance(b, ListType):
        item = _common_constraints(a.item, b.item)
        return a if item is a.item else ListType(item)
    if isinstance(a, ObjectType) and isinstance(b, ObjectType):
        props = {name: _common_constraints(t, b.props[name]) for name, t in a.props.items()}
        if all(props[name] is t for name, t in a.props.items()):
            return a
        return ObjectType(props, open=a.open, required=a.required)
    return a


_SIMPLE_TYPES: dict[str, Type] = {"boolean": BOOL, "number": NUMBER, "integer": INTEGER}


def types_from_schema(json_schema: dict) -> ObjectType:
    """The ObjectType of a lead JSON Schema (draft 2020-12 subset).

    Understood: type (a name or a list, "null" members ignored), properties, required, items, enum,
    format: date-time, pattern, minLength, maxLength, maxItems, additionalProperties (open unless it is false).
    Anything else yields ANY for that value.
    """
    result = schema_type(json_schema)
    if not isinstance(result, ObjectType):
        raise ValueError("the lead schema must describe an object (\"type\": \"object\")")
    return result


def schema_type(schema: object) -> Type:
    """The Type of one (sub)schema."""
    if not isinstance(schema, dict):
        return ANY
    declared = schema.get("type")
    if isinstance(declared, list):
        names = [n for n in declared if n != "null"]
        declared = names[0] if len(names) == 1 else (None if names else "null")
    enum = schema.get("enum")
    if declared is None and "properties" in schema:
        declared = "object"
    if declared is None and isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum):
        declared = "string"
    if declared == "string":
        if schema.get("format") == "date-time":
            return DATETIME
        values = tuple(enum) if isinstance(enum, list) and all(isinstance(v, str) for v in enum) else None
        pattern = schema.get("pattern")
        pattern = pattern if isinstance(pattern, str) else None
        min_length, max_length = _length(schema.get("minLength")), _length(schema.get("maxLength"))
        if pattern is None and min_length is None and max_length is None:
            return StringType(values) if values is not None else STRING
        return StringType(values, pattern=pattern, min_length=min_length, max_length=max_length)
    if declared in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[declared]
    if declared == "array":
        return ListType(schema_type(schema.get("items", {})), _length(schema.get("maxItems")))
    if declared == "object":
        raw_props = schema.get("properties") or {}
        props = {name: schema_type(sub) for name, sub in raw_props.items()} if isinstance(raw_props, dict) else {}
        required = schema.get("required") or []
        return ObjectType(
            props,
            open=schema.get("additionalProperties", True) is not False,
            required=frozenset(r for r in required if isinstance(r, str)),
        )
    return ANY


def _length(value: object) -> int | None:
    """A minLength / maxLength value when it is a non-negative integer, else None (ignored)."""
    return value if type(value) is int and value >= 0 else None
