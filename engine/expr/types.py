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
    """str; `enum` lists the allowed values when the schema declares them."""

    enum: tuple[str, ...] | None = None
    kind = "string"

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
    """A list (a tuple at run time) of `item`."""

    item: Type = AnyType()
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
        return a
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


_SIMPLE_TYPES: dict[str, Type] = {"boolean": BOOL, "number": NUMBER, "integer": INTEGER}


def types_from_schema(json_schema: dict) -> ObjectType:
    """The ObjectType of a lead JSON Schema (draft 2020-12 subset).

    Understood: type (a name or a list, "null" members ignored), properties, required, items, enum,
    format: date-time, additionalProperties (open unless it is false). Anything else yields ANY for
    that value.
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
        if isinstance(enum, list) and all(isinstance(v, str) for v in enum):
            return StringType(tuple(enum))
        return STRING
    if declared in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[declared]
    if declared == "array":
        return ListType(schema_type(schema.get("items", {})))
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
