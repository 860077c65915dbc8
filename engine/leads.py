"""The lead schema, compiled once into a validator + converter producing the read-only lead view.

    schema = LeadSchema.from_json_schema(json.load(open("schemas/lead.schema.json")))
    view = schema.prepare(json.loads(raw))     # raises LeadError(message, field="activities[3].at")
    view["company"]["industry"]                # every declared property is present (MISSING when absent/null)

Validation covers the JSON Schema (draft 2020-12) subset leadops uses: type (incl. unions with "null"),
properties, required, additionalProperties (bool or schema), items, enum, const, pattern (RE2, unanchored
search as in JSON Schema), minimum/maximum/exclusiveMinimum/exclusiveMaximum, minLength/maxLength,
minItems/maxItems, format "date-time". Any other constraining keyword makes `from_json_schema` raise
LeadSchemaError (a ValueError): a validator that silently ignored it would accept leads the schema rejects.

The schema is turned into nested closures once; `prepare` runs them (no jsonschema per lead). Generic
hostile-input bounds (nesting depth, number of values, total characters, key length) come from
`engine.expr.sandbox`.

The view: objects become `LeadView` (a dict subclass whose mutators raise), arrays become tuples,
date-time strings become timezone-aware datetimes (an offset is required), JSON null and absent declared
properties become `MISSING`. Undeclared properties are kept (converted the same way) when
additionalProperties allows them. JSON null for an optional declared property means "absent" (CRM exports
write empty fields as null); for a required property, or inside arrays, null is accepted only where the
schema's type allows "null".
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Callable, Mapping

from engine.errors import LeadError
from engine.expr import sandbox
from engine.expr.functions import compile_pattern
from engine.expr.sandbox import MISSING
from engine.expr.types import ObjectType, types_from_schema

LEAD_INVALID = "LEAD001"  # wrong type / constraint violated
LEAD_REQUIRED = "LEAD002"  # a required property is absent
LEAD_UNEXPECTED = "LEAD003"  # a property additionalProperties: false forbids
LEAD_DATETIME = "LEAD004"  # a date-time that cannot be read (or lacks an offset)
LEAD_LIMIT = "LEAD005"  # a hostile-input bound was hit

ANNOTATION_KEYWORDS = frozenset(
    {"$schema", "$id", "$comment", "title", "description", "default", "examples", "deprecated", "readOnly",
     "writeOnly", "$anchor", "x-leadops-pii"}
)  # fmt: skip
SUPPORTED_KEYWORDS = ANNOTATION_KEYWORDS | {
    "type", "properties", "required", "additionalProperties", "items", "enum", "const", "pattern", "minimum",
    "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems", "format",
}  # fmt: skip
JSON_TYPES = frozenset({"string", "integer", "number", "boolean", "object", "array", "null"})



class LeadSchemaError(ValueError):
    """The lead schema uses something the compiled validator cannot enforce; `problems` lists each one."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        self.message = "; ".join(problems)
        super().__init__(self.message)


class LeadView(dict):
    """A read-only dict: the lead (and every nested object) as expressions and rules see it."""

    __slots__ = ()

    def _readonly(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("the lead view is read-only")

    __setitem__ = __delitem__ = __ior__ = _readonly  # type: ignore[assignment]
    clear = pop = popitem = setdefault = update = _readonly  # type: ignore[assignment]

    def __copy__(self) -> "LeadView":
        return self

    def __deepcopy__(self, memo: Any) -> "LeadView":
        return self

    def __reduce__(self) -> Any:
        return (LeadView, (dict(self),))

    def __repr__(self) -> str:
        return f"LeadView({dict.__repr__(self)})"


class _Fail(Exception):
    """Internal: a validation failure travelling up; containers append their key to `parts`."""

    def __init__(self, message: str, code: str = LEAD_INVALID, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.code = code
        self.hint = hint
        self.parts: list[str | int] = []


class _Budget:
    """Per-lead hostile-input counters."""

    __slots__ = ("values", "chars")

    def __init__(self) -> None:
        self.values = sandbox.MAX_LEAD_VALUES
        self.chars = sandbox.MAX_LEAD_TOTAL_CHARS


def _format_path(parts: list[str | int]) -> str:
    text = ""
    for part in reversed(parts):
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + part
    return text


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is bool:
        return "a boolean"
    if type(value) in (int, float):
        return "a number"
    if type(value) is str:
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "an array"
    return f"a {type(value).__name__}"


def _null_fail(expected: str) -> _Fail:
    return _Fail(
        f"must be {expected}, not null", LEAD_INVALID,
        'omit the field, or declare it nullable in the lead schema, e.g. "type": ["string", "null"]',
    )


def _wrong_type(value: Any, nullable: bool, expected: str) -> Any:
    """A value that is not of the declared type: MISSING for a null the schema allows, else the _Fail."""
    if value is None:
        if nullable:
            return MISSING
        raise _null_fail(expected)
    raise _Fail(f"must be {expected}, not {_describe(value)}")


Validator = Callable[[Any, _Budget], Any]


# --------------------------------------------------------------------------------------------------
# Generic conversion (undeclared values, untyped schemas)


def _convert_any(value: Any, budget: _Budget, depth: int) -> Any:
    t = type(value)
    if t is str:
        budget.chars -= len(value)
        if len(value) > sandbox.MAX_STRING_LENGTH or budget.chars < 0:
            raise _Fail("string too long", LEAD_LIMIT)
        return value
    if t is bool:
        return value
    if t is int:
        if value.bit_length() > sandbox.MAX_INT_BITS:
            raise _Fail("integer too large", LEAD_LIMIT)
        return value
    if t is float:
        if not math.isfinite(value):
            raise _Fail("number must be finite")
        return value
    if value is None:
        return MISSING
    if depth >= sandbox.MAX_LEAD_DEPTH:
        raise _Fail(f"nested more than {sandbox.MAX_LEAD_DEPTH} levels deep", LEAD_LIMIT)
    if isinstance(value, dict):
        budget.values -= len(value)
        if budget.values < 0:
            raise _Fail("too many values in one lead", LEAD_LIMIT)
        out = {}
        for key, item in value.items():
            _check_key(key, budget)
            try:
                out[key] = _convert_any(item, budget, depth + 1)
            except _Fail as fail:
                fail.parts.append(key)
                raise
        return LeadView(out)
    if isinstance(value, (list, tuple)):
        budget.values -= len(value)
        if budget.values < 0:
            raise _Fail("too many values in one lead", LEAD_LIMIT)
        items = []
        for position, item in enumerate(value):
            try:
                items.append(_convert_any(item, budget, depth + 1))
            except _Fail as fail:
                fail.parts.append(position)
                raise
        return tuple(items)
    raise _Fail(f"unsupported value ({_describe(value)}); leads are decoded JSON")


def _check_key(key: Any, budget: _Budget) -> None:
    if type(key) is not str:
        raise _Fail("property names must be strings")
    if len(key) > sandbox.MAX_LEAD_KEY_LENGTH:
        raise _Fail(f"property name longer than {sandbox.MAX_LEAD_KEY_LENGTH} characters", LEAD_LIMIT)
    budget.chars -= len(key)
    if budget.chars < 0:
        raise _Fail("lead too large", LEAD_LIMIT)


# --------------------------------------------------------------------------------------------------
# The schema compiler


class _SchemaCompiler:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where or '(root)'}: {message}")

    def build(self, schema: Any, where: str, depth: int) -> Validator:
        if depth > sandbox.MAX_LEAD_DEPTH:
            self.problem(where, f"schema nested more than {sandbox.MAX_LEAD_DEPTH} levels deep")
            return _generic_validator(depth)
        if schema is True or schema == {}:
            return _generic_validator(depth)
        if schema is False:
            def never(value: Any, budget: _Budget) -> Any:
                raise _Fail("no value is allowed here")
            return never
        if not isinstance(schema, dict):
            self.problem(where, "a schema must be an object or a boolean")
            return _generic_validator(depth)
        for keyword in schema:
            if keyword not in SUPPORTED_KEYWORDS:
                self.problem(where, f"unsupported schema keyword {keyword!r}")
        if not isinstance(schema.get("x-leadops-pii", False), bool):
            self.problem(where, '"x-leadops-pii" must be true or false (true: personal data, masked in logs)')
        declared = schema.get("type")
        types = declared if isinstance(declared, list) else ([declared] if declared is not None else [])
        for name in types:
            if name not in JSON_TYPES:
                self.problem(where, f"unknown type {name!r}")
        nullable = not types or "null" in types
        concrete = [t for t in types if t != "null" and t in JSON_TYPES]
        if not concrete and "properties" in schema:
            concrete = ["object"]
        if len(concrete) == 1:
            kind = concrete[0]
            base = {
                "string": self.string, "integer": self.number, "number": self.number, "boolean": self.boolean,
                "object": self.object, "array": self.array,
            }[kind](schema, where, depth, nullable, kind)  # fmt: skip
        else:
            base = self.untyped(schema, where, depth, nullable, concrete)
        return self.wrap_enum(schema, where, base)

    # -- keyword helpers -------------------------------------------------------------------------------

    def number_keyword(self, schema: dict, keyword: str, where: str) -> Any:
        value = schema.get(keyword)
        if value is not None and (type(value) not in (int, float)):
            self.problem(where, f"{keyword} must be a number")
            return None
        return value

    def count_keyword(self, schema: dict, keyword: str, where: str) -> int | None:
        value = schema.get(keyword)
        if value is not None and (type(value) is not int or value < 0):
            self.problem(where, f"{keyword} must be a non-negative integer")
            return None
        return value

    def wrap_enum(self, schema: dict, where: str, base: Validator) -> Validator:
        if "const" in schema:
            allowed = [schema["const"]]
        elif "enum" in schema:
            allowed = schema["enum"]
            if not isinstance(allowed, list) or not allowed:
                self.problem(where, "enum must be a non-empty list")
                return base
        else:
            return base
        if not all(v is None or type(v) in (str, int, float, bool) for v in allowed):
            self.problem(where, "enum values must be scalars")
            return base
        # bools and numbers must not compare equal across types (JSON: true != 1)
        keyed = frozenset((type(v) is bool, v) for v in allowed if v is not None)
        allow_null = None in allowed
        shown = ", ".join(repr(v) for v in allowed[:20]) + (" ..." if len(allowed) > 20 else "")

        def enum_check(value: Any, budget: _Budget) -> Any:
            converted = base(value, budget)
            if value is None:
                if allow_null:
                    return converted
            elif type(value) in (str, int, float, bool) and (type(value) is bool, value) in keyed:
                return converted
            raise _Fail(f"{value!r} is not an allowed value", LEAD_INVALID, f"allowed values: {shown}")

        return enum_check

    # -- per type --------------------------------------------------------------------------------------

    def string(self, schema: dict, where: str, depth: int, nullable: bool, kind: str) -> Validator:
        min_len = self.count_keyword(schema, "minLength", where)
        max_len = self.count_keyword(schema, "maxLength", where)
        limit = sandbox.MAX_STRING_LENGTH if max_len is None else min(max_len, sandbox.MAX_STRING_LENGTH)
        minimum = min_len or 0
        pattern = None
        if "pattern" in schema:
            if not isinstance(schema["pattern"], str):
                self.problem(where, "pattern must be a string")
            else:
                try:
                    pattern = compile_pattern(schema["pattern"])
                except ValueError as exc:
                    self.problem(where, f"invalid pattern {schema['pattern']!r} (RE2 syntax): {exc}")
        pattern_text = schema.get("pattern")
        is_datetime = schema.get("format") == "date-time"

        def string_check(value: Any, budget: _Budget) -> Any:
            if type(value) is not str:
                return _wrong_type(value, nullable, "a string")
            n = len(value)
            budget.chars -= n
            if n > limit:
                raise _Fail(f"longer than {limit} characters ({n})", LEAD_LIMIT if max_len is None else LEAD_INVALID)
            if n < minimum:
                raise _Fail(f"shorter than {minimum} character(s)")
            if budget.chars < 0:
                raise _Fail("lead too large", LEAD_LIMIT)
            if pattern is not None and not pattern.search(value):
                raise _Fail(f"{value[:80]!r} does not match the pattern {pattern_text!r}")
            if is_datetime:
                return _parse_datetime(value)
            return value

        return string_check

    def number(self, schema: dict, where: str, depth: int, nullable: bool, kind: str) -> Validator:
        integer = kind == "integer"
        minimum = self.number_keyword(schema, "minimum", where)
        maximum = self.number_keyword(schema, "maximum", where)
        ex_min = self.number_keyword(schema, "exclusiveMinimum", where)
        ex_max = self.number_keyword(schema, "exclusiveMaximum", where)
        expected = "an integer" if integer else "a number"
        bounded = any(v is not None for v in (minimum, maximum, ex_min, ex_max))

        def number_check(value: Any, budget: _Budget) -> Any:
            t = type(value)
            if t is int:
                if value.bit_length() > sandbox.MAX_INT_BITS:
                    raise _Fail("integer too large", LEAD_LIMIT)
            elif t is float:
                if not math.isfinite(value):
                    raise _Fail("must be a finite number")
                if integer:
                    if not value.is_integer():
                        raise _Fail(f"must be an integer, not {value!r}")
                    value = int(value)
            else:
                return _wrong_type(value, nullable, expected)
            if bounded:
                if minimum is not None and value < minimum:
                    raise _Fail(f"must be at least {minimum} (got {value})")
                if maximum is not None and value > maximum:
                    raise _Fail(f"must be at most {maximum} (got {value})")
                if ex_min is not None and value <= ex_min:
                    raise _Fail(f"must be greater than {ex_min} (got {value})")
                if ex_max is not None and value >= ex_max:
                    raise _Fail(f"must be less than {ex_max} (got {value})")
            return value

        return number_check

    def boolean(self, schema: dict, where: str, depth: int, nullable: bool, kind: str) -> Validator:
        def boolean_check(value: Any, budget: _Budget) -> Any:
            if type(value) is bool:
                return value
            return _wrong_type(value, nullable, "true or false")

        return boolean_check

    def array(self, schema: dict, where: str, depth: int, nullable: bool, kind: str) -> Validator:
        item = self.build(schema.get("items", True), where + "[]", depth + 1)
        min_items = self.count_keyword(schema, "minItems", where) or 0
        max_items = self.count_keyword(schema, "maxItems", where)

        def array_check(value: Any, budget: _Budget) -> Any:
            if not isinstance(value, (list, tuple)):
                return _wrong_type(value, nullable, "an array")
            n = len(value)
            budget.values -= n
            if max_items is not None and n > max_items:
                raise _Fail(f"more than {max_items} items ({n})")
            if n > sandbox.DEFAULT_LEAD_MAX_ITEMS and max_items is None:
                raise _Fail(f"more than {sandbox.DEFAULT_LEAD_MAX_ITEMS} items ({n}), the limit for a list whose "
                            "schema declares no maxItems", LEAD_LIMIT)
            if n < min_items:
                raise _Fail(f"fewer than {min_items} item(s)")
            if budget.values < 0:
                raise _Fail("too many values in one lead", LEAD_LIMIT)
            out = []
            append = out.append
            position = 0
            try:
                for position, element in enumerate(value):
                    append(item(element, budget))
            except _Fail as fail:
                fail.parts.append(position)
                raise
            return tuple(out)

        return array_check

    def object(self, schema: dict, where: str, depth: int, nullable: bool, kind: str) -> Validator:
        raw_props = schema.get("properties", {})
        if not isinstance(raw_props, dict):
            self.problem(where, "properties must be an object")
            raw_props = {}
        required = schema.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            self.problem(where, "required must be a list of names")
            required = []
        required_set = frozenset(required)
        validators = {
            name: self.build(sub, f"{where}.{name}" if where else name, depth + 1) for name, sub in raw_props.items()
        }
        template = {name: MISSING for name in raw_props}
        required_names = tuple(sorted(required_set))
        additional = schema.get("additionalProperties", True)
        if additional is False:
            extra: Validator | None = None
        elif additional is True or additional == {}:
            extra = _generic_validator(depth + 1)
        else:
            extra = self.build(additional, f"{where}.*" if where else "*", depth + 1)
        allowed_names = ", ".join(sorted(raw_props)[:30])
        get_validator = validators.get

        def object_check(value: Any, budget: _Budget) -> Any:
            if not isinstance(value, dict):
                return _wrong_type(value, nullable, "an object")
            budget.values -= len(value)
            if budget.values < 0:
                raise _Fail("too many values in one lead", LEAD_LIMIT)
            for name in required_names:
                if name not in value:
                    fail = _Fail("required field is missing", LEAD_REQUIRED)
                    fail.parts.append(name)
                    raise fail
            out = template.copy()
            name = ""
            try:
                for name, raw in value.items():
                    check = get_validator(name)
                    if check is not None:
                        if raw is None and name not in required_set:
                            continue  # CRMs export empty fields as null: an optional null is absent (MISSING)
                        out[name] = check(raw, budget)
                    elif extra is not None:
                        _check_key(name, budget)
                        out[name] = extra(raw, budget)
                    else:
                        _check_key(name, budget)
                        raise _Fail("unexpected field", LEAD_UNEXPECTED, f"allowed fields: {allowed_names}")
            except _Fail as fail:
                fail.parts.append(name)
                raise
            return LeadView(out)

        return object_check

    def untyped(self, schema: dict, where: str, depth: int, nullable: bool, concrete: list[str]) -> Validator:
        generic = _generic_validator(depth)
        if not concrete:
            return generic
        accepted = set(concrete)
        shown = " or ".join(concrete)

        def union_check(value: Any, budget: _Budget) -> Any:
            if value is None:
                if nullable:
                    return MISSING
                raise _null_fail(shown)
            if not _json_type_matches(value, accepted):
                raise _Fail(f"must be {shown}, not {_describe(value)}")
            return generic(value, budget)

        return union_check


_ABSENT = object()


def _json_type_matches(value: Any, accepted: set[str]) -> bool:
    t = type(value)
    if t is bool:
        return "boolean" in accepted
    if t is int:
        return "integer" in accepted or "number" in accepted
    if t is float:
        return "number" in accepted or ("integer" in accepted and value.is_integer())
    if t is str:
        return "string" in accepted
    if isinstance(value, dict):
        return "object" in accepted
    if isinstance(value, (list, tuple)):
        return "array" in accepted
    return False


def _generic_validator(depth: int) -> Validator:
    def generic(value: Any, budget: _Budget) -> Any:
        return _convert_any(value, budget, depth)

    return generic


def _parse_datetime(text: str) -> datetime:
    """RFC 3339 / ISO 8601 date-time with a UTC offset -> aware datetime."""
    n = len(text)
    if (
        n < 16
        or n > sandbox.MAX_DATETIME_LENGTH
        or text[4] != "-"
        or text[7] != "-"
        or text[10] not in "Tt "
        or text[13] != ":"
        or not text.isascii()
    ):
        raise _Fail(
            f"{text[:40]!r} is not a date-time", LEAD_DATETIME, "use ISO 8601 with an offset, e.g. 2024-05-01T09:30:00+10:00"
        )
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        try:
            value = datetime.fromisoformat(text.upper())
        except ValueError as exc:
            raise _Fail(
                f"invalid date-time {text[:40]!r}: {exc}", LEAD_DATETIME,
                "use ISO 8601 with an offset, e.g. 2024-05-01T09:30:00+10:00",
            ) from None
    if value.tzinfo is None:
        raise _Fail(
            f"date-time {text!r} has no UTC offset", LEAD_DATETIME,
            "add the offset the time was recorded in, e.g. 2024-05-01T09:30:00Z or 2024-05-01T09:30:00+10:00",
        )
    if not sandbox.instant_in_range(value):
        raise _Fail(
            f"date-time {text!r} is outside the years {sandbox.MIN_DATETIME_YEAR}–{sandbox.MAX_DATETIME_YEAR} "
            f"(as an instant: {sandbox.INSTANT_RANGE_TEXT})",
            LEAD_DATETIME, "check the value: it is not a real CRM timestamp",
        )
    return value


class _Fallback(Exception):
    """Internal: the generated fast path met something it does not handle; the closures decide instead."""


class _FastCompiler:
    """The lead schema as generated Python source: one straight-line function per object schema.

    It is only a fast path for leads that are valid: whenever anything is off (a wrong type, a constraint
    failing, a budget exhausted, an exception of any kind) `LeadSchema.prepare` throws its result away and runs
    the closure validator, which produces the view or the exact error. So the fast path only has to be
    *stricter or equal*: every lead it accepts, the closures accept with the same view. Keywords it does not
    inline (const, enums of non-strings, unions, untyped schemas ...) are delegated to the closure validator
    of that sub-schema, whose `_Fail` also ends in the fallback.
    """

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {
            "__builtins__": {}, "MISSING": MISSING, "ABSENT": _ABSENT, "LeadView": LeadView, "Fallback": _Fallback,
            "isinstance": isinstance, "type": type, "len": len, "str": str, "int": int, "float": float,
            "bool": bool, "dict": dict, "list": list, "tuple": tuple, "isfinite": math.isfinite,
            "parse_datetime": _parse_datetime, "check_key": _check_key, "MAX_INT_BITS": sandbox.MAX_INT_BITS,
        }
        self.functions: list[str] = []
        self.counter = 0
        self.chars = "b.chars"  # where string lengths are counted: a local in object functions (one write at the end)

    def name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def bind(self, value: Any, prefix: str = "k") -> str:
        name = self.name(prefix)
        self.namespace[name] = value
        return name

    def slow(self, schema: Any, where: str, depth: int) -> str:
        return self.bind(_SchemaCompiler().build(schema, where, depth), "slow")

    # each `convert` returns lines (at `indent`) that read `src` and assign the converted value to `dst`
    def convert(self, schema: Any, where: str, depth: int, src: str, dst: str, indent: str) -> list[str]:
        if schema is True or schema == {}:
            return [f"{indent}{dst} = {self.bind(_generic_validator(depth), 'gen')}({src}, b)"]
        if not isinstance(schema, dict) or any(k not in SUPPORTED_KEYWORDS for k in schema):
            return [f"{indent}{dst} = {self.slow(schema, where, depth)}({src}, b)"]
        declared = schema.get("type")
        types = declared if isinstance(declared, list) else ([declared] if declared is not None else [])
        nullable = not types or "null" in types
        concrete = [t for t in types if t != "null" and t in JSON_TYPES]
        if not concrete and "properties" in schema:
            concrete = ["object"]
        enum = schema.get("enum")
        if len(concrete) != 1 or "const" in schema:
            return [f"{indent}{dst} = {self.slow(schema, where, depth)}({src}, b)"]
        kind = concrete[0]
        if enum is not None and not (kind == "string" and isinstance(enum, list) and enum):
            return [f"{indent}{dst} = {self.slow(schema, where, depth)}({src}, b)"]
        allow_none = nullable and (enum is None or None in enum)
        null_branch = [f"{indent}elif {src} is None:", f"{indent}    {dst} = MISSING"] if allow_none else []
        fail = [f"{indent}else:", f"{indent}    raise Fallback"]
        i2 = indent + "    "
        if kind == "string":
            max_len = schema.get("maxLength")
            limit = sandbox.MAX_STRING_LENGTH if max_len is None else min(max_len, sandbox.MAX_STRING_LENGTH)
            minimum = schema.get("minLength") or 0
            body = [f"{indent}if type({src}) is str:", f"{i2}n = len({src})"]
            body.append(f"{i2}if n > {limit!r} or n < {minimum!r}:" if minimum else f"{i2}if n > {limit!r}:")
            body.append(f"{i2}    raise Fallback")
            body.append(f"{i2}{self.chars} {'-=' if self.chars == 'b.chars' else '+='} n")
            if "pattern" in schema:
                body += [f"{i2}if not {self.bind(compile_pattern(schema['pattern']), 'pat')}.search({src}):",
                         f"{i2}    raise Fallback"]
            if enum is not None:
                allowed = frozenset(v for v in enum if type(v) is str)
                body += [f"{i2}if {src} not in {self.bind(allowed, 'enum')}:", f"{i2}    raise Fallback"]
            if schema.get("format") == "date-time":
                body.append(f"{i2}{dst} = parse_datetime({src})")
            else:
                body.append(f"{i2}{dst} = {src}")
            return body + null_branch + fail
        if kind == "boolean":
            return [f"{indent}if type({src}) is bool:", f"{i2}{dst} = {src}"] + null_branch + fail
        if kind in ("integer", "number"):
            body = [f"{indent}t = type({src})", f"{indent}if t is int:",
                    f"{i2}if {src}.bit_length() > MAX_INT_BITS:", f"{i2}    raise Fallback", f"{i2}{dst} = {src}"]
            if kind == "integer":
                body += [f"{indent}elif t is float and isfinite({src}) and {src}.is_integer():", f"{i2}{dst} = int({src})"]
            else:
                body += [f"{indent}elif t is float and isfinite({src}):", f"{i2}{dst} = {src}"]
            bounds = []
            for keyword, op in (("minimum", "<"), ("maximum", ">"), ("exclusiveMinimum", "<="), ("exclusiveMaximum", ">=")):
                value = schema.get(keyword)
                if value is not None:
                    bounds.append(f"{dst} {op} {self.bind(value)}")
            if bounds:
                body += [f"{i2}pass"]  # keep the elif chain valid; bounds are checked after it
            out = body + null_branch + fail
            if bounds:
                out += [f"{indent}if {dst} is not MISSING and ({' or '.join(bounds)}):", f"{i2}raise Fallback"]
            return out
        if kind == "array":
            item_fn = self.function(schema.get("items", True), where + "[]", depth + 1)
            min_items = schema.get("minItems") or 0
            max_items = schema.get("maxItems")
            if max_items is None:
                max_items = sandbox.DEFAULT_LEAD_MAX_ITEMS
            body = [f"{indent}if type({src}) is list:", f"{i2}n = len({src})", f"{i2}b.values -= n"]
            checks = ([f"n > {max_items!r}"] if max_items is not None else []) + ([f"n < {min_items!r}"] if min_items else [])
            if checks:
                body += [f"{i2}if {' or '.join(checks)}:", f"{i2}    raise Fallback"]
            body.append(f"{i2}{dst} = tuple([{item_fn}(e, b) for e in {src}])")
            return body + null_branch + fail
        if kind == "object":
            fn = self.object_function(schema, where, depth, nullable)
            return [f"{indent}{dst} = {fn}({src}, b)"]
        return [f"{indent}{dst} = {self.slow(schema, where, depth)}({src}, b)"]  # pragma: no cover

    def function(self, schema: Any, where: str, depth: int) -> str:
        """A generated function (value, b) -> converted value for one sub-schema."""
        outer, self.chars = self.chars, "b.chars"  # a separate function: no local counter of its own
        body = self.convert(schema, where, depth, "v", "x", "    ")
        self.chars = outer
        if len(body) == 1 and body[0].startswith("    x = ") and body[0].endswith("(v, b)"):
            return body[0][len("    x = "):-len("(v, b)")]  # one call: the callee itself, not a wrapper around it
        name = self.name("node")
        lines = [f"def {name}(v, b):"] + body + ["    return x"]
        self.functions.append("\n".join(lines))
        return name

    def object_function(self, schema: dict, where: str, depth: int, nullable: bool) -> str:
        props = schema.get("properties", {})
        required = schema.get("required", [])
        additional = schema.get("additionalProperties", True)
        if not isinstance(props, dict) or not isinstance(required, list):
            return self.slow(schema, where, depth)
        name = self.name("obj")
        lines = [f"def {name}(value, b):",
                 "    if type(value) is not dict:",
                 "        if value is None and " + repr(nullable) + ":",
                 "            return MISSING",
                 "        raise Fallback",
                 "    b.values -= len(value)",
                 "    c = 0"]
        outer, self.chars = self.chars, "c"
        for req in sorted(set(required)):
            lines += [f"    if {req!r} not in value:", "        raise Fallback"]
        lines.append("    matched = 0")
        local_names = []
        for k, (prop, sub) in enumerate(props.items()):
            local = f"p{k}"
            local_names.append((prop, local))
            lines += [f"    v = value.get({prop!r}, ABSENT)",
                      "    if v is ABSENT:",
                      f"        {local} = MISSING",
                      "    else:",
                      "        matched += 1"]
            lines += self.convert(sub, f"{where}.{prop}" if where else prop, depth + 1, "v", local, "        ")
        self.chars = outer
        lines.append("    b.chars -= c")
        lines.append("    out = {" + ", ".join(f"{prop!r}: {local}" for prop, local in local_names) + "}")
        lines.append("    if matched != len(value):")
        if additional is False:
            lines.append("        raise Fallback")
        else:
            if additional is True or additional == {}:
                extra = self.bind(_generic_validator(depth + 1), "gen")
            else:
                extra = self.slow(additional, f"{where}.*" if where else "*", depth + 1)
            declared = self.bind(frozenset(props), "names")
            lines += ["        for key, raw in value.items():",
                      f"            if key not in {declared}:",
                      "                check_key(key, b)",
                      f"                out[key] = {extra}(raw, b)"]
        lines.append("    return LeadView(out)")
        self.functions.append("\n".join(lines))
        return name

    def build(self, schema: dict) -> Callable[[Any, "_Budget"], Any]:
        root = self.function(schema, "", 0)
        source = "\n\n".join(self.functions) + "\n"
        exec(compile(source, "<leadops-lead-schema>", "exec", dont_inherit=True), self.namespace)  # noqa: S102
        fn = self.namespace[root]
        fn.source = source  # type: ignore[attr-defined]
        return fn


class LeadSchema:
    """The lead JSON Schema compiled into a fast validator + converter (build once, prepare many).

    Two forms of the same validator: generated straight-line code for the common case of a valid lead
    (`_FastCompiler`), and the closures, which decide whenever the fast path declines and report errors.
    """

    def __init__(self, schema: dict, validator: Validator, type_: ObjectType):
        self.schema = schema
        self._validator = validator
        self.type = type_
        try:
            self._fast: Validator | None = _FastCompiler().build(schema)
        except Exception:  # pragma: no cover - the closures alone are always correct
            self._fast = None

    @classmethod
    def from_json_schema(cls, schema: dict) -> "LeadSchema":
        """Compile the schema; raises LeadSchemaError (a ValueError) for anything it cannot enforce."""
        if not isinstance(schema, dict):
            raise LeadSchemaError(["the lead schema must be a JSON object"])
        compiler = _SchemaCompiler()
        validator = compiler.build(schema, "", 0)
        declared = schema.get("type")
        if declared != "object" and not (isinstance(declared, list) and "object" in declared):
            compiler.problem("", 'the lead schema must have "type": "object"')
        if compiler.problems:
            raise LeadSchemaError(compiler.problems)
        return cls(schema, validator, types_from_schema(schema))

    def prepare(self, raw: object) -> Mapping[str, Any]:
        """Validate one decoded-JSON lead and return its read-only view; raises LeadError naming the field."""
        if not isinstance(raw, dict):
            raise LeadError(f"a lead must be a JSON object, not {_describe(raw)}", "", LEAD_INVALID)
        fast = self._fast
        if fast is not None:
            try:
                budget = _Budget()
                view = fast(raw, budget)
                if budget.values >= 0 and budget.chars >= 0:
                    return view
            except Exception:
                pass  # the closures below decide (and name the failing field)
        try:
            view = self._validator(raw, _Budget())
        except _Fail as fail:
            message = fail.message + (f" ({fail.hint})" if fail.hint else "")
            error = LeadError(message, _format_path(fail.parts), fail.code)
            error.hint = fail.hint  # type: ignore[attr-defined]
            raise error from None
        except RecursionError:
            raise LeadError("lead nested too deeply", "", LEAD_LIMIT) from None
        return view
