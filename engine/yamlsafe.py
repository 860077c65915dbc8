"""Safe YAML loading with line/column marks for untrusted policy files.

Policy files arrive in pull requests, so this module treats every byte as hostile. `load_yaml` returns
plain data (dict / list / str / int / float / bool / None) plus a `Marks` side table that maps a
JSON-pointer-like path such as ``("rules", 3, "when")`` to the `Location` of that value (or of its key),
so later passes (JSON Schema, model, expressions) can report located diagnostics. Every problem is a
`Diagnostic` with a stable code; `load_yaml` collects as many as it can and raises `YamlError`.

How it works. PyYAML's composer and constructors are never used: they recurse (RecursionError on deep
input), expand aliases, keep the last of duplicate keys, resolve YAML 1.1 types and honour unsafe tags. We
only run PyYAML's *parser* (libyaml's when available: ~20x faster, same node marks) and build the data from
the event stream ourselves, iteratively, checking depth / node count / keys / tags on the way.

Decisions (each one is the contract, tests hold it):

* Encoding (YAML006). Bytes must be UTF-8; a leading UTF-8 BOM is accepted and dropped; invalid bytes are
  reported with their byte offset and line:column. CRLF and lone CR are normalised to LF (lines and columns
  are unchanged). Rejected characters: C0/C1 controls other than TAB/LF/CR (NUL, DEL, U+0085 …), U+2028/9
  (parsers and editors disagree on them as line breaks, so line numbers would lie), a BOM after the start,
  U+FFFE/U+FFFF, lone surrogates, and bidirectional controls U+202A-E / U+2066-9 (they make a pull request
  display differently from how it parses: "Trojan Source", CVE-2021-42574).
* Tabs (YAML005). A TAB in a line's leading whitespace is an error (except inside quoted or block scalar
  content, where it is text), and so is any parser error that points at a TAB, whichever parser is in use.
  This is stricter than libyaml, which accepts tabs in flow collections and plain-scalar continuations.
* Aliases and anchors (YAML004) are rejected outright: policy files do not need them and rejecting them
  removes alias bombs ("billion laughs") entirely; the YAML 1.1 merge key ``<<`` is rejected too.
* Tags (YAML003). Only the core tags are allowed: ``!!str !!int !!float !!bool !!null`` on scalars (the
  value must match the tag), ``!!map`` / ``!!seq`` on collections, and the non-specific ``!`` (= string).
  Everything else (``!!python/...``, ``!!binary``, ``!!timestamp``, ``!!set``, ``!!omap``, ``!local`` …)
  is refused.
* Scalars follow the YAML 1.2 core schema, not PyYAML's YAML 1.1 resolver: ``null Null NULL ~`` and empty
  are None; only ``true True TRUE false False FALSE`` are booleans (``yes/no/on/off/y/n`` stay strings);
  ints are decimal ``[-+]?[0-9]+`` (leading zeros are decimal: ``010`` is 10), ``0o17`` and ``0x1F``;
  floats ``1.5 .5 1. 1e3 -2.5E-3``. No ``1_000``, no sexagesimal ``1:30``, no timestamps: dates such as
  ``2026-12-24`` stay the string that was written. Quoted and block scalars are always strings.
* Non-finite numbers (YAML011): ``.inf``, ``.nan``, overflowing floats (``1e999``) and number literals
  longer than MAX_YAML_NUMBER_CHARS are rejected: they have no JSON form and break comparisons.
* Keys (YAML010). A plain scalar key is used as the literal text written, never type-resolved: ``on:``,
  ``yes:``, ``1:`` and ``2026-12-24:`` give the string keys "on", "yes", "1", "2026-12-24" (the JSON
  Schema then judges them). Rejected: a collection or alias as a key, a key tagged with anything but
  ``!!str``/``!``, and an empty key.  Duplicate keys (YAML002) are errors naming both lines.
* Documents (YAML008 / YAML009). Exactly one document whose top level is a mapping.
* Limits (YAML007): see the constants below. Depth and node count are checked on the event stream, so a
  100 000-deep ``[[[[…`` is refused after MAX_YAML_DEPTH events, without recursion.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Iterator
from typing import Any

import yaml

from engine.errors import Diagnostic, Location, PolicyError

__all__ = [
    "MAX_YAML_BYTES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "MAX_YAML_KEY_CHARS",
    "MAX_YAML_NUMBER_CHARS",
    "MAX_YAML_DIAGNOSTICS",
    "Marks",
    "YamlError",
    "load_yaml",
]

MAX_YAML_BYTES = 1024 * 1024  # size of one policy file, in UTF-8 bytes (before BOM removal)
MAX_YAML_DEPTH = 64  # nesting of mappings / sequences; the top-level mapping is depth 1
MAX_YAML_NODES = 100_000  # scalars + mappings + sequences (keys included) in one file
MAX_YAML_KEY_CHARS = 256  # characters in one mapping key
MAX_YAML_NUMBER_CHARS = 100  # characters in one numeric literal (int("9"*5000) is slow / refused)
MAX_YAML_DIAGNOSTICS = 100  # stop collecting after this many problems in one file

# The parser only: libyaml's when available. Node start marks are identical (tests check it); only some
# syntax-error messages are worded differently.
_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_CORE = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_CORE + t for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ = _CORE + "map", _CORE + "seq"
_ALLOWED_TAGS_HINT = "allowed tags: !!str, !!int, !!float, !!bool, !!null, !!map, !!seq"

_NULL_RE = re.compile(r"~|null|Null|NULL|")
_TRUE_RE = re.compile(r"true|True|TRUE")
_FALSE_RE = re.compile(r"false|False|FALSE")
_DEC_RE = re.compile(r"[-+]?[0-9]+")
_OCT_RE = re.compile(r"0o[0-7]+")
_HEX_RE = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT_RE = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_MAYBE_TYPED = frozenset("~nNtTfF0123456789+-.")  # first characters of a null, bool or number
_NONFINITE_RE = re.compile(r"[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)")

_BAD_CHAR_RE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff\ufeff\ufffe\uffff]"
)
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LEADING_WS_RE = re.compile(r"[ \t]*")


class YamlError(PolicyError):
    """A YAML file was rejected; `diagnostics` lists every problem found, sorted by location."""

    def __init__(self, diagnostics: list[Diagnostic]):
        super().__init__(diagnostics)
        count = len(self.diagnostics)
        first = self.diagnostics[0].format() if self.diagnostics else "unknown error"
        self.args = (f"{count} YAML error(s); first: {first}",)


Path = tuple[str | int, ...]
_Pos = tuple[int, int]  # (line, column), 1-based; turned into a Location only when asked for


class Marks:
    """Where each value (and each mapping key) of a loaded document was written.

    Paths are tuples of mapping keys (str) and sequence indexes (int), like JSON Schema's
    ``error.absolute_path``; any iterable is accepted. Unknown paths fall back to the nearest known
    ancestor, and finally to the start of the file.
    """

    __slots__ = ("file", "_values", "_keys")

    def __init__(self, file: str, values: dict[Path, _Pos], keys: dict[Path, _Pos]):
        self.file = file
        self._values = values
        self._keys = keys

    def at(self, path: Iterable[str | int] = ()) -> Location:
        """Location of the value at `path` (its first character; a block mapping starts at its first key)."""
        path = tuple(path)
        while True:
            pos = self._values.get(path)
            if pos is not None:
                return Location(self.file, *pos)
            if not path:
                return Location(self.file, 1, 1)
            path = path[:-1]

    def key_at(self, path: Iterable[str | int]) -> Location:
        """Location of the key of the mapping entry at `path`; for a sequence item or an unknown path, the
        same fallback as `at`."""
        path = tuple(path)
        pos = self._keys.get(path)
        return Location(self.file, *pos) if pos is not None else self.at(path)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, tuple) and path in self._values

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Marks({self.file!r}, {len(self._values)} values)"


class _TooMany(Exception):
    """Internal: the diagnostic cap or a fatal limit was hit; stop processing this file."""


class _Collector:
    def __init__(self, file: str):
        self.file = file
        self.diagnostics: list[Diagnostic] = []

    def loc(self, line: int, column: int) -> Location:
        return Location(self.file, line, column)

    def mark(self, mark: Any) -> Location:
        return Location(self.file, mark.line + 1, mark.column + 1)

    def add(self, code: str, message: str, location: Location | _Pos, hint: str = "") -> None:
        if isinstance(location, tuple):
            location = Location(self.file, *location)
        if len(self.diagnostics) >= MAX_YAML_DIAGNOSTICS:
            self.diagnostics.append(
                Diagnostic(
                    "YAML007",
                    f"too many problems in this file; stopped after {MAX_YAML_DIAGNOSTICS}",
                    location,
                    "fix the problems above and run again",
                )
            )
            raise _TooMany
        self.diagnostics.append(Diagnostic(code, message, location, hint))

    def fatal(self, code: str, message: str, location: Location | _Pos, hint: str = "") -> None:
        self.add(code, message, location, hint)
        raise _TooMany


def load_yaml(text_or_bytes: str | bytes, file: str) -> tuple[dict[str, Any], Marks]:
    """Parse one untrusted YAML policy file into plain data plus marks.

    Returns ``(data, marks)`` where `data` is the top-level mapping (insertion-ordered dicts, lists, str,
    int, float, bool, None). Raises `YamlError` with every problem found (codes YAML001-YAML011).
    """
    out = _Collector(file)
    result: tuple[dict[str, Any], Marks] | None = None
    try:
        text = _decode(text_or_bytes, out)
        if text is not None:
            text = _normalise(text)
            tab_lines = _check_characters(text, out)
            if not out.diagnostics or all(d.code == "YAML005" for d in out.diagnostics):
                result = _build(text, file, out, tab_lines)
    except _TooMany:
        pass
    if out.diagnostics or result is None:
        if not out.diagnostics:  # pragma: no cover - defensive: never return without data or an error
            out.diagnostics.append(Diagnostic("YAML001", "could not load YAML", Location(file, 1, 1)))
        raise YamlError(out.diagnostics)
    return result


# --------------------------------------------------------------------------------------- raw text checks


def _decode(data: str | bytes, out: _Collector) -> str | None:
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data)
        if len(data) > MAX_YAML_BYTES:
            out.fatal("YAML007", f"file is {len(data)} bytes; the limit is {MAX_YAML_BYTES}",
                      out.loc(1, 1), "split the policy into several files")
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
            out.fatal("YAML006", "file is UTF-16/UTF-32 encoded (it starts with a UTF-16 byte order mark)",
                      out.loc(1, 1), "save the file as UTF-8")
        pos = 0
        while True:
            try:
                text = data[pos:].decode("utf-8")
                break
            except UnicodeDecodeError as exc:
                bad = pos + exc.start
                line_start = data.rfind(b"\n", 0, bad) + 1
                line = data.count(b"\n", 0, bad) + 1
                column = len(data[line_start:bad].decode("utf-8", errors="replace")) + 1
                out.add("YAML006",
                        f"invalid UTF-8 byte 0x{data[bad]:02X} at byte offset {bad}",
                        out.loc(line, column),
                        "save the file as UTF-8; check for text pasted from a Latin-1/Windows-1252 source")
                pos = pos + exc.end
        return None if out.diagnostics else text
    if not isinstance(data, str):
        raise TypeError(f"load_yaml() needs str or bytes, not {type(data).__name__}")
    size = len(data) if len(data) > MAX_YAML_BYTES else len(data.encode("utf-8", "surrogatepass"))
    if size > MAX_YAML_BYTES:
        out.fatal("YAML007", f"file is {size} bytes or more; the limit is {MAX_YAML_BYTES}",
                  out.loc(1, 1), "split the policy into several files")
    return data[1:] if data.startswith("\ufeff") else data


def _check_characters(text: str, out: _Collector) -> dict[int, int]:
    """Report forbidden characters (YAML006); return {line: column} of the first TAB in each line's leading
    whitespace (candidates for YAML005, decided once multi-line scalars are known)."""
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    for m in _BAD_CHAR_RE.finditer(text):
        line = bisect.bisect_right(line_starts, m.start())
        column = m.start() - line_starts[line - 1] + 1
        ch = m.group()
        code = f"U+{ord(ch):04X}"
        if ch in _BIDI:
            message = f"bidirectional control character {code} is not allowed"
            hint = "remove it: it makes the text display differently from how it is read (Trojan Source)"
        elif ch == "\ufeff":
            message = "byte order mark (U+FEFF) is only allowed at the very start of the file"
            hint = "remove it"
        elif ch in "\u2028\u2029":
            message = f"Unicode line/paragraph separator {code} is not allowed"
            hint = "use an ordinary line break"
        elif "\ud800" <= ch <= "\udfff":
            message = f"lone surrogate {code} is not valid text"
            hint = "save the file as UTF-8"
        else:
            name = {"\x00": " (NUL)", "\x7f": " (DEL)", "\x0b": " (vertical tab)", "\x0c": " (form feed)",
                    "\x1b": " (ESC)"}.get(ch, "")
            message = f"control character {code}{name} is not allowed"
            hint = "remove it; policy files must be plain UTF-8 text (write it as an escape in a quoted string)"
        out.add("YAML006", message, out.loc(line, column), hint)
    tabs: dict[int, int] = {}
    for number, start in enumerate(line_starts, 1):
        ws = _LEADING_WS_RE.match(text, start).group()
        if "\t" in ws:
            tabs[number] = ws.index("\t") + 1
    return tabs


def _normalise(text: str) -> str:
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


# ------------------------------------------------------------------------------------------ event stream

_TAB_HINT = "indent with spaces only: YAML does not allow tabs for indentation (set your editor to insert spaces)"


_DEPTH_HINT = "flatten the structure or split the file"


def _is_parser_depth_limit(problem: str) -> bool:
    """True for a parser's own nesting-limit error (libyaml: 'exceeded maximum nesting depth …')."""
    p = problem.lower()
    return "nesting depth" in p or "nest level" in p or "maximum depth" in p


def _syntax_hint(problem: str, context: str) -> str:
    p = problem.lower()
    c = context.lower()
    if "mapping values are not allowed" in p:
        return ("a value may not contain ': ' unless it is quoted, e.g. note: \"a: b\"; "
                "otherwise check this line's indentation")
    if "could not find expected ':'" in p or "simple key" in c:
        return "a key must be followed by ': '; check the indentation, or quote a value that spans several lines"
    if "quoted scalar" in c:
        return "close the quote; inside '…' write '' for a quote, inside \"…\" escape \\ and \""
    if "flow" in c or "',' or ']'" in p or "',' or '}'" in p:
        return ("close the [ … ] or { … } and separate items with ', '; "
                "quote values containing ',', '[', ']', '{' or '}'")
    if "cannot start any token" in p:
        return "quote values that start with @, `, %, |, >, ! or &"
    if "block end" in p or "expected key" in p or "'-' indicator" in p or "block" in c:
        return "check the indentation: entries of one mapping or list must start in the same column"
    if "document" in p:
        return "a policy file holds one YAML document: remove the '...' / '---' markers and anything after it"
    if "directive" in c or "directive" in p:
        return "remove the '%' directive line"
    return ("check the indentation, and quote strings that contain ': ' or ' #' or start with "
            "a special character (* & ! @ ` % { [ | >)")


class _Frame:
    __slots__ = ("is_map", "container", "path", "store", "key", "expect_key", "first_lines")

    def __init__(self, is_map: bool, container: Any, path: Path, store: bool):
        self.is_map = is_map
        self.container = container
        self.path = path
        self.store = store  # False inside a subtree we only check (a rejected key, a duplicate's value)
        self.key: str | None = None
        self.expect_key = True
        self.first_lines: dict[str, int] = {}


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_CORE):] if tag.startswith(_CORE) else tag


def _build(
    text: str, file: str, out: _Collector, tab_lines: dict[int, int]
) -> tuple[dict[str, Any], Marks] | None:
    values: dict[Path, _Pos] = {}
    keys: dict[Path, _Pos] = {}
    root: list[Any] = []
    spans: list[tuple[int, int]] = []  # 1-based line ranges holding quoted / block scalar content
    try:
        _walk(_events(text), out, values, keys, root, spans)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = out.mark(mark) if mark is not None else out.loc(1, 1)
        problem = exc.problem or "invalid YAML"
        context = exc.context or ""
        at_tab = mark is not None and 0 <= mark.index < len(text) and text[mark.index] == "\t"
        _report_tabs(out, tab_lines, spans)
        if loc.line in tab_lines:
            pass  # already reported as YAML005 on this line
        elif at_tab or "tab" in problem.lower():
            out.add("YAML005", "tab character where YAML expects spaces", loc, _TAB_HINT)
        elif _is_parser_depth_limit(problem):
            # libyaml (PyYAML >= 6.0.4) has its own nesting limit, which its look-ahead can reach before our
            # event walk sees depth MAX_YAML_DEPTH: the author gets leadops' message whichever limit trips first
            out.add("YAML007", f"nesting is deeper than {MAX_YAML_DEPTH} levels", loc, _DEPTH_HINT)
        else:
            message = problem
            if context:
                where = f" (line {exc.context_mark.line + 1})" if exc.context_mark is not None else ""
                message = f"{problem} {context}{where}"
            out.add("YAML001", f"YAML syntax error: {message}", loc, _syntax_hint(problem, context))
        return None
    except yaml.YAMLError as exc:  # ReaderError and friends: characters were pre-checked, so unexpected
        out.add("YAML001", f"YAML error: {exc}", out.loc(1, 1), "save the file as plain UTF-8 text")
        return None
    _report_tabs(out, tab_lines, spans)
    if not root:
        return None
    return root[0], Marks(file, values, keys)


def _report_tabs(out: _Collector, tab_lines: dict[int, int], spans: list[tuple[int, int]]) -> None:
    inside: set[int] = set()
    for first, last in spans:
        inside.update(range(first, last + 1))
    for line in sorted(tab_lines):
        if line in inside:
            tab_lines.pop(line)
            continue
        out.add("YAML005", "tab character used for indentation", out.loc(line, tab_lines[line]), _TAB_HINT)


def _events(text: str) -> Iterator[Any]:
    loader = _LOADER(text)
    try:
        while loader.check_event():
            yield loader.get_event()
    finally:
        loader.dispose()


def _walk(events: Iterator[Any], out: _Collector, values: dict[Path, _Pos], keys: dict[Path, _Pos],
          root: list[Any], spans: list[tuple[int, int]]) -> None:
    stack: list[_Frame] = []
    documents = 0
    nodes = 0
    root_frame = _Frame(False, root, (), True)  # a pseudo-sequence holding the document's root node
    for event in events:
        kind = type(event).__name__
        if kind in ("StreamStartEvent", "DocumentEndEvent"):
            continue
        if kind == "DocumentStartEvent":
            documents += 1
            if documents > 1:
                out.fatal("YAML008", "a policy file holds exactly one YAML document; found a second one",
                          out.mark(event.start_mark),
                          "remove the '---' line and merge the documents, or move the second into its own file")
            continue
        if kind == "StreamEndEvent":
            if documents == 0:
                out.add("YAML009", "file is empty", out.loc(1, 1),
                        "a policy file is a mapping, e.g. 'kind: scoring' on its first line")
            return
        if kind in ("MappingEndEvent", "SequenceEndEvent"):
            stack.pop()
            continue

        # a node: scalar, mapping start, sequence start or alias
        parent = stack[-1] if stack else root_frame
        start = event.start_mark
        loc = (start.line + 1, start.column + 1)
        nodes += 1
        if nodes > MAX_YAML_NODES:
            out.fatal("YAML007", f"file has more than {MAX_YAML_NODES} values", loc,
                      "split the policy into several files")
        if kind == "AliasEvent":
            out.add("YAML004", f"alias '*{event.anchor}' is not allowed", loc,
                    "repeat the value or split the file; anchors and aliases are not supported")
        elif event.anchor is not None:
            out.add("YAML004", f"anchor '&{event.anchor}' is not allowed", loc,
                    "remove the anchor; anchors and aliases are not supported (repeat the value instead)")
        if kind == "ScalarEvent" and event.style and event.end_mark.line > event.start_mark.line:
            last = event.end_mark.line + (1 if event.end_mark.column > 0 else 0)
            spans.append((event.start_mark.line + 2, last))

        if parent.is_map and parent.expect_key:
            _take_key(event, kind, parent, loc, out, keys)
            if kind in ("MappingStartEvent", "SequenceStartEvent"):
                _push(event, kind, stack, parent, (), False, loc, out)
            continue

        if parent is root_frame:  # the document's root node
            if root:  # defensive: the parser never yields two root nodes per document
                continue
            if kind == "MappingStartEvent":
                values[()] = loc
                root.append(_push(event, kind, stack, parent, (), True, loc, out))
                continue
            if kind == "SequenceStartEvent":
                _not_a_mapping(out, loc, "a list")
                _push(event, kind, stack, parent, (), False, loc, out)
                continue
            value = None if kind == "AliasEvent" else _scalar(event, loc, out)
            if kind == "AliasEvent":
                what = "an alias"
            elif value is None and not event.tag and not event.style and not event.value:
                what = "nothing (the document is empty)"
                loc = (1, 1)
            else:
                what = {bool: "a boolean", int: "a number", float: "a number", str: "a string",
                        type(None): "null"}[type(value)]
            _not_a_mapping(out, loc, what)
            continue

        # a value: a sequence item or the value after a key
        if parent.is_map:
            store = parent.store and parent.key is not None
            path = parent.path + (parent.key,) if store else ()
            parent.expect_key = True
        else:
            store = parent.store
            path = parent.path + (len(parent.container),) if store else ()
        if store:
            values[path] = loc
        if kind in ("MappingStartEvent", "SequenceStartEvent"):
            value = _push(event, kind, stack, parent, path, store, loc, out)
        else:
            value = None if kind == "AliasEvent" else _scalar(event, loc, out)
        if store:
            if parent.is_map:
                parent.container[parent.key] = value
            else:
                parent.container.append(value)


def _not_a_mapping(out: _Collector, loc: _Pos, what: str) -> None:
    out.add("YAML009", f"the top level of a policy file must be a mapping; found {what}", loc,
            "start the file with 'key: value' lines, e.g. 'kind: scoring'")


def _push(event: Any, kind: str, stack: list[_Frame], parent: _Frame, path: Path, store: bool,
          loc: _Pos, out: _Collector) -> Any:
    is_map = kind == "MappingStartEvent"
    if len(stack) + 1 > MAX_YAML_DEPTH:
        out.fatal("YAML007", f"nesting is deeper than {MAX_YAML_DEPTH} levels", loc, _DEPTH_HINT)
    tag = event.tag
    if tag is not None and tag != "!" and tag != (_MAP if is_map else _SEQ):
        out.add("YAML003", f"tag '{_short_tag(tag)}' is not allowed on a {'mapping' if is_map else 'list'}",
                loc, _tag_hint(tag))
    container: Any = {} if is_map else []
    stack.append(_Frame(is_map, container, path, store))
    return container


def _tag_hint(tag: str) -> str:
    if tag.startswith(_CORE + "python/"):
        return "remove the tag: tags that build Python objects are never loaded"
    return f"remove the tag; {_ALLOWED_TAGS_HINT}"


def _take_key(event: Any, kind: str, frame: _Frame, loc: _Pos, out: _Collector,
              keys: dict[Path, _Pos]) -> None:
    frame.expect_key = False
    frame.key = None
    if kind != "ScalarEvent":
        what = {"MappingStartEvent": "a mapping", "SequenceStartEvent": "a list", "AliasEvent": "an alias"}[kind]
        out.add("YAML010", f"mapping keys must be strings; found {what}", loc,
                "use a plain string key; a '?' or '[ … ]' key is not supported")
        return
    tag = event.tag
    plain = tag is None and event.implicit[0] and not event.style
    if tag is not None and tag not in ("!", _STR):
        out.add("YAML010", f"mapping keys must be strings; found a key tagged '{_short_tag(tag)}'", loc,
                "remove the tag from the key")
        return
    key = event.value
    if key == "":
        out.add("YAML010", "mapping key is empty", loc, "write a name before the ':'")
        return
    if len(key) > MAX_YAML_KEY_CHARS:
        out.add("YAML007", f"key is {len(key)} characters long; the limit is {MAX_YAML_KEY_CHARS}", loc,
                "use a shorter key")
        return
    if plain and key == "<<":
        out.add("YAML004", "merge keys ('<<') are not supported", loc,
                "repeat the entries you meant to merge, or split the file")
        return
    first = frame.first_lines.get(key)
    if first is not None:
        out.add("YAML002", f"duplicate key '{key}' (first defined at line {first})", loc,
                "remove one of the two entries or rename it; YAML would silently keep only the last one")
        return
    frame.first_lines[key] = loc[0]
    frame.key = key
    if frame.store:
        keys[frame.path + (key,)] = loc


# ---------------------------------------------------------------------------------------------- scalars


def _scalar(event: Any, loc: _Pos, out: _Collector) -> Any:
    """The value of a scalar under the YAML 1.2 core schema (see the module docstring)."""
    tag = event.tag
    text = event.value
    if tag is None:
        if event.style or not event.implicit[0]:
            return text
        return _resolve_plain(text, loc, out)
    if tag in ("!", _STR):
        return text
    if tag == _NULL:
        if _NULL_RE.fullmatch(text):
            return None
    elif tag == _BOOL:
        if _TRUE_RE.fullmatch(text) or _FALSE_RE.fullmatch(text):
            return _TRUE_RE.fullmatch(text) is not None
    elif tag == _INT:
        if _DEC_RE.fullmatch(text) or _OCT_RE.fullmatch(text) or _HEX_RE.fullmatch(text):
            return _resolve_plain(text, loc, out)
    elif tag == _FLOAT:
        if _DEC_RE.fullmatch(text) or _FLOAT_RE.fullmatch(text) or _NONFINITE_RE.fullmatch(text):
            value = _resolve_plain(text, loc, out)
            return float(value) if isinstance(value, int) else value
    else:
        out.add("YAML003", f"tag '{_short_tag(tag)}' is not allowed", loc, _tag_hint(tag))
        return text
    out.add("YAML003", f"value {text!r} does not match its tag '{_short_tag(tag)}'", loc,
            "fix the value or remove the tag")
    return text


def _resolve_plain(text: str, loc: _Pos, out: _Collector) -> Any:
    if not text:
        return None
    first = text[0]
    if first not in _MAYBE_TYPED:
        return text
    if first in "~nN":
        return None if _NULL_RE.fullmatch(text) else text
    if first in "tT":
        return True if _TRUE_RE.fullmatch(text) else text
    if first in "fF":
        return False if _FALSE_RE.fullmatch(text) else text
    if len(text) > MAX_YAML_NUMBER_CHARS:
        if _DEC_RE.fullmatch(text) or _OCT_RE.fullmatch(text) or _HEX_RE.fullmatch(text) \
                or _FLOAT_RE.fullmatch(text):
            out.add("YAML011", f"number is {len(text)} characters long; the limit is {MAX_YAML_NUMBER_CHARS}",
                    loc, "quote it if it is an identifier, otherwise shorten it")
        return text
    if _DEC_RE.fullmatch(text):
        return int(text, 10)
    if first == "0" and len(text) > 2:
        if _OCT_RE.fullmatch(text):
            return int(text[2:], 8)
        if _HEX_RE.fullmatch(text):
            return int(text[2:], 16)
    if _FLOAT_RE.fullmatch(text):
        value = float(text)
        if math.isfinite(value):
            return value
        out.add("YAML011", f"number {text} is out of range", loc, "use a smaller number")
        return text
    if _NONFINITE_RE.fullmatch(text):
        out.add("YAML011", f"non-finite number {text} is not allowed", loc,
                "use a finite number, or quote it if you meant the string")
    return text
