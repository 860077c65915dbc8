"""Every safety rule and limit of the expression language (and of lead input) lives in this one file.

Policy expressions arrive in pull requests and leads arrive from CRMs: both are untrusted. This module
holds, as named constants, everything that bounds what they can do:

* text rules checked *before* ``ast.parse`` (length, forbidden characters, identifiers, bracket depth);
* the whitelist of AST node types, operators and helper names the parser accepts;
* the runtime limits enforced by the arithmetic helpers the generated code calls (``**``, ``*``,
  string/sequence ``+``, ``%``), so ``9**9**9`` or ``"a" * 10**9`` fail fast with an `EvaluationError`;
* the hostile-input bounds applied by `engine.leads` to every decoded lead.

The missing-value rule
----------------------
Absent fields and JSON ``null`` read as the singleton `MISSING`. It is designed so native Python
operators give the language's semantics without extra code in the hot path:

* every comparison involving MISSING is **False**: ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``,
  ``in`` and ``not in`` (on either side: ``MISSING in [..]``, ``MISSING not in [..]``,
  ``x in MISSING`` and ``x not in MISSING`` are all False);
* arithmetic with MISSING gives MISSING (``MISSING + 1``, ``-MISSING``, ``2 ** MISSING``);
* MISSING is falsy, so ``not MISSING`` is True and ``MISSING or x`` is ``x``;
* field access on MISSING gives MISSING (``lead.company.industry`` when ``company`` is absent);
* helpers given MISSING return MISSING, except ``present``, ``missing`` and ``coalesce``.
"""

from __future__ import annotations

import ast
import io
import keyword
import operator
import re
import threading
import tokenize
import unicodedata
from datetime import datetime, timezone
from typing import Any

from engine.errors import EvaluationError, ExpressionError, LeadError

# --------------------------------------------------------------------------------------------------
# Error codes (stable; documented for policy authors)

EXPR_SYNTAX = "EXPR001"  # not a valid expression
EXPR_FORBIDDEN = "EXPR002"  # a construct, operator or name form the language does not allow
EXPR_UNKNOWN_NAME = "EXPR003"  # a name that is not in scope
EXPR_UNKNOWN_FIELD = "EXPR004"  # a field the lead schema (or scope object) does not declare
EXPR_TYPE = "EXPR005"  # a type error visible at load time
EXPR_LIMIT = "EXPR006"  # a size / depth / value limit exceeded
EXPR_CHARACTER = "EXPR007"  # a forbidden character (NUL, bidi control, non-ASCII identifier ...)
EXPR_BAD_CALL = "EXPR008"  # unknown helper, wrong arity, bad keyword, bad literal argument

EVAL_TYPE = "EVAL001"  # a value of the wrong type at run time (e.g. lower(42) via an untyped field)
EVAL_LIMIT = "EVAL002"  # a runtime limit was hit (huge power, string repetition ...)
EVAL_ARITHMETIC = "EVAL003"  # division by zero, overflow
EVAL_INPUT = "EVAL004"  # the evaluator was given data it cannot read (not a prepared view)
EVAL_OUTPUT = "EVAL005"  # a result that cannot be written as UTF-8 text (a lone surrogate)
EVAL_COST = "EVAL006"  # the evaluation of one lead passed its runtime cost budget

# --------------------------------------------------------------------------------------------------
# Expression limits

MAX_EXPRESSION_LENGTH = 2000  # characters of source text
MAX_BRACKET_DEPTH = 20  # nesting of ( [ { on the raw text, checked before ast.parse
MAX_AST_DEPTH = 40  # depth of the parsed tree (iteratively measured, never a RecursionError)
MAX_AST_NODES = 500  # nodes in the parsed tree
MAX_POWER_EXPONENT = 1000  # |exponent| of **
MAX_INT_BITS = 1024  # integer literals, lead integers and integer results of * and **
MAX_STRING_LENGTH = 100_000  # string literals, string results of + / *, lead strings
MAX_COLLECTION_LENGTH = 10_000  # list/tuple literal length and sequence results of + / *
MAX_ROUND_DIGITS = 32  # |ndigits| of round()
MAX_PATTERN_LENGTH = 500  # matches(s, "pattern") literal length
RE2_MAX_MEMORY = 1 << 20  # bytes re2 may use for one compiled pattern (program + DFA caches)
RE2_CACHE_MAX_BYTES = 256 << 20  # compiled-pattern cache: at most this much RE2 memory (256 patterns at 1 MiB)
MAX_QUANTIFIER_NESTING = 3  # any()/all() inside the condition of another any()/all()
MAX_ACTIVITY_TYPES_PER_CALL = 64  # distinct types in one count_activities / has_activity / last_activity_at call
MAX_PATTERN_PROGRAM_SIZE = 2000  # RE2 program instructions: a short pattern ([\pL]{1,200}) can compile huge

# --------------------------------------------------------------------------------------------------
# Cost (engine.expr.cost computes each rule's worst case per lead from these; the meter enforces it at run time)

DEFAULT_COST_BUDGET = 5_000_000  # cost units per lead when leadops.yaml sets no guard.max_cost_per_lead
MAX_COST_BUDGET = 1_000_000_000  # the most leadops.yaml may allow
STRING_CHARS_PER_UNIT = 10  # scanning a string (regex, lower, contains, +) costs 1 unit per 10 characters
UNMETERED = 1 << 62  # the meter outside a policy evaluation (direct expression calls)

# --------------------------------------------------------------------------------------------------
# Lead input limits (applied by engine.leads.LeadSchema.prepare to every decoded lead)

MAX_LEAD_DEPTH = 16  # nesting of objects/arrays in one lead
MAX_LEAD_VALUES = 250_000  # total scalars + containers in one lead
MAX_LEAD_TOTAL_CHARS = 4_000_000  # total characters of all strings (values and keys) in one lead
DEFAULT_LEAD_MAX_ITEMS = 10_000  # items of a lead list whose schema declares no maxItems (the cost bound relies on it)
MAX_LEAD_KEY_LENGTH = 256  # characters of one property name
MAX_DATETIME_LENGTH = 64  # characters of one date-time string
MIN_DATETIME_YEAR = 1900  # lead timestamps and `now` outside [1900, 9000] are input errors, so calendar
MAX_DATETIME_YEAR = 9000  # arithmetic (days either side, DST lookups) never overflows Python's datetime range
# The limits hold for the instant, not the year as written: 1900-01-01T00:00:00+23:59 is 1899 in UTC.
MIN_INSTANT = datetime(MIN_DATETIME_YEAR, 1, 1, tzinfo=timezone.utc)
MAX_INSTANT = datetime(MAX_DATETIME_YEAR, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)
INSTANT_RANGE_TEXT = f"{MIN_DATETIME_YEAR}-01-01T00:00:00Z – {MAX_DATETIME_YEAR}-12-31T23:59:59Z"


def instant_in_range(value: datetime) -> bool:
    """Is the aware datetime's instant (UTC-normalized, whatever its offset) within the supported range?

    Aware comparisons never overflow, unlike `astimezone` near year 1 or 9999. A year strictly inside the range
    settles it without them (a UTC offset moves an instant by less than a day), and aware comparisons across
    offsets are slow enough to show in every lead's profile (one per timestamp).
    """
    if MIN_DATETIME_YEAR < value.year < MAX_DATETIME_YEAR:
        return True
    return MIN_INSTANT <= value <= MAX_INSTANT


# --------------------------------------------------------------------------------------------------
# Characters rejected anywhere in the source text (Trojan-source and invisible characters)

BIDI_CONTROL_CHARACTERS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e"  # LRE RLE PDF LRO RLO
    "\u2066\u2067\u2068\u2069"  # LRI RLI FSI PDI
    "\u200e\u200f"  # LRM RLM
    "\u061c"  # ALM
)
ALLOWED_CONTROL_CHARACTERS = frozenset("\t\n\r")
# Unicode categories rejected anywhere: controls (minus tab/newline), format chars (zero-width, BOM,
# bidi), surrogates, private use, unassigned.
FORBIDDEN_CHARACTER_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})

# --------------------------------------------------------------------------------------------------
# Whitelists

ALLOWED_NODE_TYPES: frozenset[type] = frozenset(
    {
        ast.Expression,
        ast.BoolOp,
        ast.BinOp,
        ast.UnaryOp,
        ast.IfExp,
        ast.Compare,
        ast.Call,
        ast.keyword,
        ast.Constant,
        ast.Attribute,
        ast.Subscript,
        ast.Name,
        ast.List,
        ast.Tuple,
        ast.Set,
        ast.Load,
    }
)
ALLOWED_OPERATORS: frozenset[type] = frozenset(
    {
        ast.And, ast.Or,
        ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
        ast.Not, ast.USub, ast.UAdd,
        ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn,
    }
)  # fmt: skip
ALLOWED_CONSTANT_TYPES: tuple[type, ...] = (bool, int, float, str)
# The parameter names generated code may use; a Scope may only hold these.
ALLOWED_SCOPE_NAMES = frozenset({"lead", "now", "score", "activity", "stage"})
# List quantifiers: any(list, x, condition) / all(list, x, condition), compiled to a plain loop.
QUANTIFIERS = frozenset({"any", "all"})
# Keyword arguments are only accepted by helpers, and only these names.
ALLOWED_KEYWORDS = frozenset({"within_days", "url", "ndigits"})

FORBIDDEN_CONSTRUCT_HINTS: dict[type, str] = {
    ast.Lambda: "lambda is not allowed",
    ast.ListComp: "comprehensions are not allowed; use count_activities()/has_activity() or contains()",
    ast.SetComp: "comprehensions are not allowed; use count_activities()/has_activity() or contains()",
    ast.DictComp: "comprehensions are not allowed; use count_activities()/has_activity() or contains()",
    ast.GeneratorExp: "generators are not allowed; use count_activities()/has_activity() or contains()",
    ast.JoinedStr: "f-strings are not allowed; compare strings or join them with +",
    ast.FormattedValue: "f-strings are not allowed; compare strings or join them with +",
    ast.Starred: "* unpacking is not allowed",
    ast.NamedExpr: ":= assignment is not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
    ast.Dict: "dict literals are not allowed; use a list such as [\"AU\", \"NZ\"]",
    ast.Slice: "slices are not allowed; use startswith()/endswith() or a single index",
    ast.BitAnd: "bitwise & is not allowed; use 'and'",
    ast.BitOr: "bitwise | is not allowed; use 'or'",
    ast.BitXor: "bitwise ^ is not allowed",
    ast.Invert: "bitwise ~ is not allowed; use 'not'",
    ast.LShift: "shifts are not allowed",
    ast.RShift: "shifts are not allowed",
    ast.MatMult: "@ is not allowed",
    ast.Is: "'is' is not allowed; use == or present(x) / missing(x)",
    ast.IsNot: "'is not' is not allowed; use != or present(x) / missing(x)",
}

# --------------------------------------------------------------------------------------------------
# The MISSING sentinel


class _MissingType:
    """The missing value: absent field or JSON null. See the module docstring for its semantics."""

    __slots__ = ()
    _instance: "_MissingType | None" = None

    def __new__(cls) -> "_MissingType":
        if cls._instance is None:
            cls._instance = object.__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"

    def __copy__(self) -> "_MissingType":
        return self

    def __deepcopy__(self, memo: Any) -> "_MissingType":
        return self

    def __bool__(self) -> bool:
        return False

    def __hash__(self) -> int:
        return 0x4D495353

    # every comparison is False (Python falls back to these reflected methods when the other operand
    # is an int, str, datetime, tuple ... so `50 <= MISSING` is False without any wrapper)
    def __eq__(self, other: object) -> bool:
        return False

    def __ne__(self, other: object) -> bool:
        return False

    def __lt__(self, other: object) -> bool:
        return False

    __le__ = __gt__ = __ge__ = __lt__

    def __contains__(self, item: object) -> bool:
        return False

    def __iter__(self):  # without this, __getitem__ would make MISSING an endless sequence
        raise TypeError("MISSING is not iterable")

    def __getitem__(self, key: object) -> "_MissingType":
        return self

    # arithmetic yields MISSING
    def _missing(self, *other: object) -> "_MissingType":
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _missing
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _missing
    __pow__ = __rpow__ = __neg__ = __pos__ = __abs__ = __round__ = _missing


MISSING = _MissingType()

# --------------------------------------------------------------------------------------------------
# Text rules applied before ast.parse


_NEWLINE = re.compile(r"\r\n|\r|\n")


def _lines(source: str) -> list[tuple[int, str]]:
    """(0-based character offset, text) of each line, split as Python's tokenizer splits them: at \n, \r\n
    and a lone \r (so line numbers from ast/tokenize land on the right line)."""
    out, start = [], 0
    for m in _NEWLINE.finditer(source):
        out.append((start, source[start:m.start()]))
        start = m.end()
    out.append((start, source[start:]))
    return out


def char_offset(source: str, lineno: int, col_offset_bytes: int) -> int:
    """1-based character offset in `source` of an ast/tokenize position (line 1-based, UTF-8 byte col)."""
    lines = _lines(source)
    if lineno < 1 or lineno > len(lines):
        return 0
    before, line = lines[lineno - 1]
    col_chars = len(line.encode("utf-8")[:col_offset_bytes].decode("utf-8", "ignore"))
    return before + col_chars + 1


def _token_offset(source: str, lineno: int, col_chars: int) -> int:
    """1-based character offset of a tokenize position (tokenize columns are in characters; its lines, read
    through StringIO.readline, end at \n only)."""
    lines = source.split("\n")
    return sum(len(line) + 1 for line in lines[: lineno - 1]) + col_chars + 1


def check_source_text(source: object) -> str:
    """Reject what must never reach ast.parse; return the source unchanged when it is acceptable."""
    if not isinstance(source, str):
        raise ExpressionError(EXPR_SYNTAX, f"an expression must be a string, not {type(source).__name__}", 1)
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            EXPR_LIMIT,
            f"expression is {len(source)} characters long; the limit is {MAX_EXPRESSION_LENGTH}",
            MAX_EXPRESSION_LENGTH + 1,
            "split the condition into named rules",
        )
    if not source.strip():
        raise ExpressionError(EXPR_SYNTAX, "empty expression", 1)
    for index, char in enumerate(source):
        if char.isascii() and (char >= " " and char != "\x7f" or char in ALLOWED_CONTROL_CHARACTERS):
            continue
        if char == "\x00":
            raise ExpressionError(EXPR_CHARACTER, "NUL byte in expression", index + 1)
        if char in BIDI_CONTROL_CHARACTERS:
            raise ExpressionError(
                EXPR_CHARACTER,
                f"bidirectional control character U+{ord(char):04X} in expression",
                index + 1,
                "remove invisible direction overrides; they can make code read differently than it runs",
            )
        if char not in ALLOWED_CONTROL_CHARACTERS and unicodedata.category(char) in FORBIDDEN_CHARACTER_CATEGORIES:
            raise ExpressionError(
                EXPR_CHARACTER,
                f"forbidden control or invisible character U+{ord(char):04X} in expression",
                index + 1,
            )
    _check_tokens(source)
    return source


def _check_tokens(source: str) -> None:
    """Identifier rules and bracket depth, on the token stream of the raw text."""
    depth = 0
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError) as exc:
        raise ExpressionError(EXPR_SYNTAX, f"invalid expression: {exc.args[0] if exc.args else exc}", 1) from None
    for tok in tokens:
        column = _token_offset(source, tok.start[0], tok.start[1])
        if tok.type == tokenize.NAME:
            name = tok.string
            if not name.isascii() or unicodedata.normalize("NFKC", name) != name:
                raise ExpressionError(
                    EXPR_CHARACTER,
                    f"non-ASCII identifier {name!r}",
                    column,
                    "names and fields are plain ASCII (lookalike letters are rejected)",
                )
            if name.startswith("_"):
                raise ExpressionError(
                    EXPR_FORBIDDEN, f"names starting with '_' are not allowed: {name!r}", column
                )
        elif tok.type == tokenize.ERRORTOKEN:
            if tok.string.strip() and not tok.string.isascii():
                hint = 'use straight quotes (" or \')' if tok.string.strip()[0] in "\u2018\u2019\u201c\u201d" else ""
                raise ExpressionError(EXPR_CHARACTER, f"unexpected character {tok.string!r}", column, hint)
            if tok.string.strip():
                raise ExpressionError(EXPR_SYNTAX, f"unexpected character {tok.string!r}", column)
        elif tok.type == tokenize.OP:
            if tok.string in "([{":
                depth += 1
                if depth > MAX_BRACKET_DEPTH:
                    raise ExpressionError(
                        EXPR_LIMIT, f"brackets nested more than {MAX_BRACKET_DEPTH} deep", column
                    )
            elif tok.string in ")]}":
                depth -= 1
            elif tok.string == ";":
                raise ExpressionError(EXPR_SYNTAX, "only one expression is allowed (no ';')", column)


def parse_checked(source: str) -> ast.Expression:
    """ast.parse behind the text rules; then the iterative depth/size limits and the node whitelist."""
    check_source_text(source)
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        column = char_offset(source, exc.lineno or 1, _byte_col(source, exc.lineno or 1, exc.offset or 1))
        raise ExpressionError(EXPR_SYNTAX, f"invalid expression: {exc.msg}", column) from None
    except (RecursionError, MemoryError):
        raise ExpressionError(EXPR_LIMIT, "expression is nested too deeply", 1) from None
    except ValueError as exc:  # e.g. an int literal with more than sys.get_int_max_str_digits() digits
        raise ExpressionError(EXPR_LIMIT, f"invalid literal: {exc}", 1) from None
    _check_shape(source, tree)
    _check_whitelist(source, tree)
    return tree


def _byte_col(source: str, lineno: int, offset_chars: int) -> int:
    """SyntaxError.offset is 1-based characters (str input); convert to a 0-based UTF-8 byte column."""
    lines = _lines(source)
    line = lines[lineno - 1][1] if 0 < lineno <= len(lines) else ""
    return len(line[: max(offset_chars - 1, 0)].encode("utf-8"))


def node_column(source: str, node: ast.AST) -> int:
    lineno = getattr(node, "lineno", None)
    if lineno is None:
        return 0
    return char_offset(source, lineno, getattr(node, "col_offset", 0))


def _check_shape(source: str, tree: ast.AST) -> None:
    """Depth and node-count limits, measured with an explicit stack (no recursion)."""
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_AST_NODES:
            raise ExpressionError(
                EXPR_LIMIT, f"expression has more than {MAX_AST_NODES} parts", node_column(source, node) or 1
            )
        if depth > MAX_AST_DEPTH:
            raise ExpressionError(
                EXPR_LIMIT, f"expression is nested more than {MAX_AST_DEPTH} levels deep", node_column(source, node) or 1
            )
        for child in ast.iter_child_nodes(node):
            stack.append((child, depth + 1))


def _check_whitelist(source: str, tree: ast.AST) -> None:
    """Only whitelisted node types, operators and constants; located EXPR002 errors otherwise."""
    for node in ast.walk(tree):
        kind = type(node)
        column = node_column(source, node) or 1
        if kind in ALLOWED_OPERATORS:
            continue
        if kind not in ALLOWED_NODE_TYPES:
            hint = FORBIDDEN_CONSTRUCT_HINTS.get(kind, "")
            what = hint.split(";")[0] if hint else f"{kind.__name__} is not allowed"
            raise ExpressionError(EXPR_FORBIDDEN, what, column, hint if ";" in hint else "")
        if kind is ast.BinOp or kind is ast.UnaryOp or kind is ast.BoolOp:
            _check_operator(source, node, node.op, column)  # type: ignore[attr-defined]
        elif kind is ast.Compare:
            for op in node.ops:  # type: ignore[attr-defined]
                _check_operator(source, node, op, column)
        elif kind is ast.Constant:
            _check_constant(node, column)  # type: ignore[arg-type]
        elif kind is ast.Call:
            func = node.func  # type: ignore[attr-defined]
            if not isinstance(func, ast.Name):
                raise ExpressionError(
                    EXPR_FORBIDDEN, "method calls are not allowed", node_column(source, func) or column,
                    method_hint(node, source),
                )
            for kw in node.keywords:  # type: ignore[attr-defined]
                if kw.arg is None:
                    raise ExpressionError(EXPR_FORBIDDEN, "**kwargs is not allowed", node_column(source, kw) or column)
        elif kind is ast.Attribute or kind is ast.Name:
            name = node.attr if kind is ast.Attribute else node.id  # type: ignore[attr-defined]
            if name.startswith("_") or keyword.iskeyword(name):
                raise ExpressionError(EXPR_FORBIDDEN, f"names starting with '_' are not allowed: {name!r}", column)
        elif kind is ast.Subscript:
            _check_subscript(source, node, column)  # type: ignore[arg-type]
        elif kind in (ast.List, ast.Tuple, ast.Set):
            if len(node.elts) > MAX_COLLECTION_LENGTH:  # type: ignore[attr-defined]
                raise ExpressionError(EXPR_LIMIT, f"list literal longer than {MAX_COLLECTION_LENGTH}", column)


def _check_operator(source: str, node: ast.AST, op: ast.AST, column: int) -> None:
    if type(op) in ALLOWED_OPERATORS:
        return
    hint = FORBIDDEN_CONSTRUCT_HINTS.get(type(op), "")
    raise ExpressionError(EXPR_FORBIDDEN, f"operator {type(op).__name__} is not allowed", column, hint)


def _check_constant(node: ast.Constant, column: int) -> None:
    value = node.value
    if value is None:
        raise ExpressionError(EXPR_FORBIDDEN, "None is not allowed", column, "use present(x) / missing(x)")
    if type(value) not in ALLOWED_CONSTANT_TYPES:
        raise ExpressionError(EXPR_FORBIDDEN, f"{type(value).__name__} literals are not allowed", column)
    if type(value) is int and value.bit_length() > MAX_INT_BITS:
        raise ExpressionError(EXPR_LIMIT, f"integer literal larger than {MAX_INT_BITS} bits", column)
    if type(value) is float and (value != value or value in (float("inf"), float("-inf"))):
        raise ExpressionError(EXPR_LIMIT, "number literal out of range", column)
    if type(value) is str and len(value) > MAX_STRING_LENGTH:
        raise ExpressionError(EXPR_LIMIT, f"string literal longer than {MAX_STRING_LENGTH}", column)
    if type(value) is str and not value.isascii():
        surrogate = next((i for i, c in enumerate(value) if "\ud800" <= c <= "\udfff"), None)
        if surrogate is not None:
            raise ExpressionError(
                EXPR_CHARACTER, f"lone surrogate U+{ord(value[surrogate]):04X} in a string literal (character "
                f"{surrogate + 1} of the string) is not valid text", column,
                "write the character itself, or its escape as one code point (\\U0001F600), not half a pair",
            )


def subscript_key(node: ast.Subscript) -> int | str | None:
    """The literal key of a subscript (int, negative int or str), or None when it is not a literal."""
    key = node.slice
    if isinstance(key, ast.Constant) and type(key.value) in (int, str):
        return key.value
    if (
        isinstance(key, ast.UnaryOp)
        and isinstance(key.op, ast.USub)
        and isinstance(key.operand, ast.Constant)
        and type(key.operand.value) is int
    ):
        return -key.operand.value
    return None


def _check_subscript(source: str, node: ast.Subscript, column: int) -> None:
    key = subscript_key(node)
    if key is None:
        raise ExpressionError(
            EXPR_FORBIDDEN, "subscripts must be an integer or string literal, e.g. x[0] or x[\"name\"]", column
        )
    if isinstance(key, str) and key.startswith("_"):
        raise ExpressionError(EXPR_FORBIDDEN, f"names starting with '_' are not allowed: {key!r}", column)


STRING_METHOD_HELPERS = {
    "endswith": "endswith", "startswith": "startswith", "lower": "lower", "upper": "upper",
    "strip": "strip", "casefold": "lower", "count": "contains", "find": "contains", "index": "contains",
    "__contains__": "contains", "get": "coalesce", "split": "email_domain", "match": "matches",
    "search": "matches", "fullmatch": "matches",
}  # fmt: skip


# method -> (helper, number of arguments) where the helper means exactly the same: safe to rewrite in a hint
EXACT_METHOD_HELPERS = {
    "lower": ("lower", 0), "casefold": ("lower", 0), "upper": ("upper", 0), "strip": ("strip", 0),
    "endswith": ("endswith", 1), "startswith": ("startswith", 1),
}  # fmt: skip


class _NoRewrite(Exception):
    pass


def _as_helpers(node: ast.AST, source: str) -> str:
    """`x.lower().endswith(y)` -> `endswith(lower(x), y)`, keeping the author's own text for everything else
    (their quotes too); _NoRewrite when a method has no exact helper."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        helper, arity = EXACT_METHOD_HELPERS.get(node.func.attr, (None, -1))
        if helper is None or len(node.args) != arity or node.keywords:
            raise _NoRewrite
        parts = [_as_helpers(node.func.value, source)] + [_as_helpers(a, source) for a in node.args]
        return f"{helper}({', '.join(parts)})"
    if any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) for n in ast.walk(node)):
        raise _NoRewrite  # a method call deeper inside an argument: not worth a partial rewrite
    return ast.get_source_segment(source, node) or ast.unparse(node)


def method_rewrite(call: ast.Call, source: str = "") -> str | None:
    """The method call written with helpers, only if the result is itself an allowed expression."""
    try:
        text = _as_helpers(call, source)
        parse_checked(text)
    except (_NoRewrite, ExpressionError, SyntaxError, ValueError, RecursionError):
        return None
    return text


def method_hint(call: ast.AST, source: str = "") -> str:
    """A hint for a method call: the same call written with helpers when that is exact, else the helper's name."""
    func = call.func if isinstance(call, ast.Call) else call
    rewritten = method_rewrite(call, source) if isinstance(call, ast.Call) else None
    if rewritten:
        return f"call the helper instead: {rewritten}"
    if isinstance(func, ast.Attribute):
        helper = STRING_METHOD_HELPERS.get(func.attr)
        if helper:
            return f"methods cannot be called; use the helper {helper}() (see README: Expressions)"
        if func.attr == "format":
            return "string formatting is not available; compare values or join strings with +"
    return "only the helper functions can be called, e.g. lower(lead.email)"


# --------------------------------------------------------------------------------------------------
# Runtime helpers used by generated code and by the reference evaluator (the same functions, so the two
# paths agree by construction)


def _limit(message: str) -> EvaluationError:
    return EvaluationError(EVAL_LIMIT, message)


def safe_pow(base: Any, exponent: Any) -> Any:
    """``base ** exponent`` with the exponent and integer result size bounded."""
    if base is MISSING or exponent is MISSING:
        return MISSING
    if type(base) is bool or type(exponent) is bool or not isinstance(base, (int, float)) or not isinstance(
        exponent, (int, float)
    ):
        raise EvaluationError(EVAL_TYPE, f"** needs numbers, got {_tn(base)} and {_tn(exponent)}")
    if abs(exponent) > MAX_POWER_EXPONENT:
        raise _limit(f"exponent {exponent!r} is larger than {MAX_POWER_EXPONENT}")
    if type(base) is int and type(exponent) is int and exponent > 0:
        if (base.bit_length() - 1) * exponent > MAX_INT_BITS:
            raise _limit(f"{base} ** {exponent} is larger than {MAX_INT_BITS} bits")
    result = base**exponent
    if type(result) is complex:
        raise EvaluationError(EVAL_ARITHMETIC, f"{base} ** {exponent} is not a real number")
    if type(result) is int and result.bit_length() > MAX_INT_BITS:
        raise _limit(f"result of ** is larger than {MAX_INT_BITS} bits")
    return result


def safe_mul(left: Any, right: Any) -> Any:
    """``left * right`` for numbers only; sequence repetition is refused; integer size bounded."""
    if left is MISSING or right is MISSING:
        return MISSING
    lt, rt = type(left), type(right)
    if (lt is int or lt is float or lt is bool) and (rt is int or rt is float or rt is bool):
        if lt is int and rt is int and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise _limit(f"result of * is larger than {MAX_INT_BITS} bits")
        return left * right
    if isinstance(left, (str, tuple)) or isinstance(right, (str, tuple)):
        seq, count = (left, right) if isinstance(left, (str, tuple)) else (right, left)
        if type(count) is int:
            limit = MAX_STRING_LENGTH if isinstance(seq, str) else MAX_COLLECTION_LENGTH
            if count > 0 and len(seq) * count > limit:
                raise _limit(f"repetition would produce {len(seq) * count} items; the limit is {limit}")
            size = len(seq) * max(count, 0)
            charge(string_units(size) if isinstance(seq, str) else 1 + size)
            return seq * count
    raise EvaluationError(EVAL_TYPE, f"* needs numbers, got {_tn(left)} and {_tn(right)}")


def safe_add(left: Any, right: Any) -> Any:
    """``left + right``; string and sequence results are bounded."""
    lt, rt = type(left), type(right)
    if lt is str and rt is str:
        if len(left) + len(right) > MAX_STRING_LENGTH:
            raise _limit(f"string longer than {MAX_STRING_LENGTH} characters")
        charge(string_units(len(left) + len(right)))
        return left + right
    if lt is tuple and rt is tuple:
        if len(left) + len(right) > MAX_COLLECTION_LENGTH:
            raise _limit(f"list longer than {MAX_COLLECTION_LENGTH} items")
        charge(1 + len(left) + len(right))
        return left + right
    if left is MISSING or right is MISSING:
        return MISSING
    if (lt is int or lt is float or lt is bool) and (rt is int or rt is float or rt is bool):
        return left + right
    raise EvaluationError(EVAL_TYPE, f"+ cannot combine {_tn(left)} and {_tn(right)}")


def _numbers_only(symbol: str, native: Any) -> Any:
    """A guarded arithmetic operator that accepts numbers (and MISSING) only.

    Generated code calls it whenever the checker cannot prove both operands are numbers, so a value of
    unknown type never reaches a native operator that would do something else with it (``datetime -
    datetime`` -> timedelta, ``timedelta / 2``, ``str % x`` formatting).
    """

    def operation(left: Any, right: Any) -> Any:
        if left is MISSING or right is MISSING:
            return MISSING
        lt, rt = type(left), type(right)
        if (lt is int or lt is float or lt is bool) and (rt is int or rt is float or rt is bool):
            return native(left, right)
        raise EvaluationError(EVAL_TYPE, f"{symbol} needs numbers, got {_tn(left)} and {_tn(right)}")

    operation.__name__ = f"safe_{native.__name__.strip('_')}"
    operation.__doc__ = f"``left {symbol} right`` for numbers only."
    return operation


safe_sub = _numbers_only("-", operator.sub)
safe_div = _numbers_only("/", operator.truediv)
safe_floordiv = _numbers_only("//", operator.floordiv)
safe_mod = _numbers_only("%", operator.mod)  # string %-formatting is refused


def encodable_text(text: str) -> str:
    """`text` unchanged when it can be written as UTF-8; a lone surrogate is an EVAL005 error.

    Every output path (decision JSON, expression values, routing owners) goes through this, so one bad value
    becomes a typed error for its lead instead of invalid UTF-8 or an aborted batch.
    """
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise EvaluationError(
                EVAL_OUTPUT, f"the result holds a lone surrogate (U+{ord(exc.object[exc.start]):04X}) at "
                f"character {exc.start + 1}, which is not valid UTF-8 text",
            ) from None
    return text


def safe_in(item: Any, container: Any) -> bool:
    """``item in container`` with MISSING on either side False."""
    if item is MISSING or container is MISSING:
        return False
    return item in container


def safe_not_in(item: Any, container: Any) -> bool:
    """``item not in container`` with MISSING on either side False (native `not in` would say True)."""
    if item is MISSING or container is MISSING:
        return False
    return item not in container


def field(value: Any, name: str) -> Any:
    """``value.name`` on an untyped value: a mapping lookup (never getattr); MISSING when absent."""
    if value is MISSING:
        return MISSING
    if isinstance(value, dict):
        result = value.get(name, MISSING)
        return MISSING if result is None else result
    raise EvaluationError(EVAL_TYPE, f"cannot read field {name!r} of a {_tn(value)}")


def index(value: Any, position: int) -> Any:
    """``value[position]`` on a list or string; MISSING when out of range."""
    if value is MISSING:
        return MISSING
    if isinstance(value, (tuple, str)):
        try:
            return value[position]
        except IndexError:
            return MISSING
    raise EvaluationError(EVAL_TYPE, f"cannot index a {_tn(value)}")


class CostLimitError(LeadError):
    """One lead's evaluation passed its cost budget (EVAL006): an error for that lead, never a warning."""

    def __init__(self, budget: int):
        super().__init__(
            f"evaluating this lead passed the policy's cost budget of {budget:,} units (guard.max_cost_per_lead in "
            "leadops.yaml); its lists or strings are larger than the lead schema's limits allowed for",
            code=EVAL_COST,
        )


class _Meter(threading.local):
    """The cost meter of the evaluation running on this thread (see `metered`)."""

    remaining = UNMETERED
    budget = UNMETERED


_meter = _Meter()


def charge(units: int) -> None:
    """Charge data-sized work (loops, regex scans, long string results) to the running evaluation's budget."""
    meter = _meter
    meter.remaining -= units
    if meter.remaining < 0:
        raise CostLimitError(meter.budget)


def meter_remaining() -> int:
    """The cost units left to the evaluation running on this thread."""
    return _meter.remaining


def string_units(length: int) -> int:
    """Cost units of scanning a string of `length` characters."""
    return 1 + length // STRING_CHARS_PER_UNIT


def start_meter(budget: int) -> None:
    """Meter this thread's evaluation of one lead: `budget` cost units, then CostLimitError."""
    meter = _meter
    meter.remaining = meter.budget = budget


def stop_meter() -> None:
    """Back to unmetered (direct expression calls outside a policy evaluation)."""
    meter = _meter
    meter.remaining = meter.budget = UNMETERED


def _quantified(kind: str, items: Any) -> Any:
    """The list a quantifier loops over (a list, at most MAX_COLLECTION_LENGTH items), charged to the meter."""
    if type(items) is not tuple and type(items) is not frozenset:
        raise EvaluationError(EVAL_TYPE, f"{kind}() needs a list, got {_tn(items)}")
    if len(items) > MAX_COLLECTION_LENGTH:
        raise _limit(f"{kind}() over {len(items)} items; the limit is {MAX_COLLECTION_LENGTH}")
    charge(len(items))
    return items


def quantifier_any(items: Any, predicate: Any) -> Any:
    """``any(list, x, condition)``: True when the condition holds for some item (MISSING list: MISSING)."""
    if items is MISSING:
        return MISSING
    for item in _quantified("any", items):
        if predicate(item):
            return True
    return False


def quantifier_all(items: Any, predicate: Any) -> Any:
    """``all(list, x, condition)``: True when the condition holds for every item (MISSING list: MISSING)."""
    if items is MISSING:
        return MISSING
    for item in _quantified("all", items):
        if not predicate(item):
            return False
    return True


def make_set(items: tuple) -> frozenset:
    """A set literal's value."""
    return frozenset(items)


def _tn(value: Any) -> str:
    if value is MISSING:
        return "missing value"
    return {
        bool: "boolean", int: "number", float: "number", str: "string", tuple: "list",
    }.get(type(value), "object" if isinstance(value, dict) else type(value).__name__)  # fmt: skip


# Exceptions raised by native operators inside generated code that are translated to EvaluationError.
EVAL_CAUGHT_EXCEPTIONS: tuple[type[BaseException], ...] = (
    TypeError, ValueError, OverflowError, ZeroDivisionError, RecursionError, MemoryError,
    KeyError, IndexError, AttributeError,
)  # fmt: skip


def evaluation_error(exc: BaseException, source: str) -> EvaluationError:
    """Translate an exception raised while evaluating `source` into an EvaluationError."""
    if isinstance(exc, EvaluationError):
        return exc
    shown = source if len(source) <= 120 else source[:117] + "..."
    if isinstance(exc, ZeroDivisionError):
        return EvaluationError(EVAL_ARITHMETIC, f"division by zero in `{shown}`")
    if isinstance(exc, OverflowError):
        return EvaluationError(EVAL_ARITHMETIC, f"number too large in `{shown}`")
    if isinstance(exc, (RecursionError, MemoryError)):
        return EvaluationError(EVAL_LIMIT, f"resource limit hit evaluating `{shown}`")
    if isinstance(exc, (KeyError, AttributeError)):
        return EvaluationError(
            EVAL_INPUT,
            f"field {exc.args[0] if exc.args else '?'} absent while evaluating `{shown}`"
            " (pass leads through LeadSchema.prepare; scope objects must hold every declared field)",
        )
    return EvaluationError(EVAL_TYPE, f"{exc} in `{shown}`")
