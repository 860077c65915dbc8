"""Adversarial expressions taken from public advisories and write-ups against Python sandboxes.

Every case names its source (advisory id, issue or article URL) in REFS and in its pytest id. The contract
(issue 7): each case is rejected at load time with a typed, located `ExpressionError`, or evaluates to a
value or a typed `EvaluationError` within 1 s and 100 MB, without mutating the lead, and the value is plain
data (no function, code, frame, module or class object can come back).

All cases run in ONE child process (this file, run as a script) with an address-space limit; the parent
watches a per-case wall clock, so a case that hangs or allocates gigabytes fails its own test instead of
hanging CI. Results are collected once per session.

Scopes: "policy" evaluates through `PolicySet.evaluate_expression` (the path `leadops expr` uses, the real
lead schema, names lead/now/score/stage); "wide" compiles against a test schema with an untyped field
(`lead.any`) and unbounded strings (`lead.s`), so runtime type confusion (a string where a number was
expected, a 100 000-character string ...) is exercised too, and also checks the simpleeval reference agrees.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

# --------------------------------------------------------------------------------------------------------
# Sources (cited by key in every case id)

REFS = {
    "ARMIN": "https://lucumr.pocoo.org/2016/12/29/careful-with-str-format/ (Be careful with Python's new-style string format)",
    "NED": "https://nedbatchelder.com/blog/201206/eval_really_is_dangerous.html (Eval really is dangerous)",
    "J2-2016": "CVE-2016-10745 / GHSA-hj2j-77xm-mc5v: Jinja2 < 2.8.1 str.format sandbox escape (pallets/jinja#635)",
    "J2-2019": "CVE-2019-10906 / GHSA-462w-v97r-4m45: Jinja2 < 2.10.1 str.format_map sandbox escape",
    "J2-2024": "CVE-2024-56326: Jinja2 < 3.1.5 sandbox breakout through an indirect reference to a format method",
    "J2-2025": "CVE-2025-27516: Jinja2 < 3.1.6 sandbox breakout through the |attr filter selecting format",
    "J2-MUL": "https://github.com/pallets/jinja/pull/2149 (sandbox string multiplication DoS, '\"A\" * 10**9')",
    "J2-MUT": "Jinja2 ImmutableSandboxedEnvironment / modifies_known_mutable (sandbox docs: mutation of passed-in data)",
    "SE-15": "https://github.com/danthedeckie/simpleeval/issues/15 (func_globals / __globals__ of passed-in functions)",
    "SE-138": "https://github.com/danthedeckie/simpleeval/issues/138 (escape through generators: gi_frame.f_globals)",
    "SE-81": "https://github.com/danthedeckie/simpleeval/pull/81 (attribute access / subscripts / functions by default)",
    "SE-65": "https://github.com/danthedeckie/simpleeval/issues/65 (assignment accepted: 'a = 2')",
    "SE-122": "https://github.com/danthedeckie/simpleeval/issues/122 (performance limits: 100000 ** 100000, int->str)",
    "SE-199": "https://github.com/danthedeckie/simpleeval/pull/199 (operator-module bypasses, set/frozenset check)",
    "SE-CVE": "CVE-2026-32640: simpleeval < 1.0.5 sandbox escape (see agent0ai/agent-zero#1383)",
    "AE-86": "https://github.com/lmfit/asteval/issues/86 (escape via __reduce__ -> getattr)",
    "AE-32": "https://github.com/lmfit/asteval/issues/32 (arbitrary code execution via type()/str.format)",
    "AE-100": "https://github.com/lmfit/asteval/issues/100 (segfault on '()' * 10**6 source text)",
    "AE-GHSA": "GHSA-vp47-9734-prjw: asteval < 1.0.6 Procedure attributes reachable (lmfit/asteval#135)",
    "NE-323": "https://github.com/pydata/numexpr/issues/323 (().__class__.__bases__[0].__subclasses__() / code objects)",
    "NE-CVE": "CVE-2023-39631 / GHSA-f73w-4m7g-ch9x: numexpr.evaluate arbitrary code execution (pydata/numexpr#442)",
    "PD-EVAL": "https://github.com/pandas-dev/pandas/pull/58697 + pandas-dev/pandas#60602 (DataFrame.query/eval '@' RCE)",
    "HIVE-POW": "https://github.com/aden-hive/hive/issues/5557 (DoS via 10**10**10 and 1<<10000000)",
    "HIVE-MUL": "https://github.com/aden-hive/hive/issues/7473 (sequence repetition str/list * int unbounded)",
    "PEP3131": "https://peps.python.org/pep-3131/ (identifiers are NFKC-normalised: fullwidth/math letters alias ASCII)",
    "TROJAN": "CVE-2021-42574 / CVE-2021-42694 Trojan Source: bidi overrides and homoglyphs (https://trojansource.codes)",
    "REDOS": "https://owasp.org/www-community/attacks/Regular_expression_Denial_of_Service_-_ReDoS",
}

BASE_LEAD = {
    "id": "adv-1",
    "email": "jo@example.com",
    "country": "AU",
    "employees": 120,
    "company": {"name": "Acme", "industry": "software", "extra": {"gi_frame": "data", "__class__": "x"}},
    "activities": [{"type": "page_view", "at": "2026-11-01T00:00:00+10:00", "url": "/pricing"}],
}

WIDE_SCHEMA = {
    "type": "object",
    "properties": {
        "s": {"type": ["string", "null"]},
        "n": {"type": ["integer", "null"]},
        "x": {"type": ["number", "null"]},
        "any": {},
        "d": {"type": ["string", "null"], "format": "date-time"},
        "tags": {"type": ["array", "null"], "items": {"type": "string"}},
        "company": {"type": ["object", "null"], "additionalProperties": True, "properties": {"k": {"type": "string"}}},
        "activities": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "at"],
                "properties": {
                    "type": {"type": "string", "enum": ["page_view", "form_fill"]},
                    "at": {"type": "string", "format": "date-time"},
                    "url": {"type": "string"},
                },
            },
        },
    },
}

REJECT, ANY, VALUE, EVAL_ERROR = "reject", "any", "value", "eval_error"
R100K = "@@REPEAT:ab:50000"  # a 100 000-character string, expanded in the worker

# (id, source, scope, lead overrides, expectation)
CASES: list[tuple[str, str, str, dict, str]] = [
    # ---- format strings and format specs ------------------------------------------------------------
    ("ARMIN-format-class", '"{0.__class__}".format(lead)', "policy", {}, REJECT),
    ("ARMIN-format-globals", '"{0.__init__.__globals__}".format(lead)', "policy", {}, REJECT),
    ("ARMIN-format-on-field", "lead.email.format(lead)", "policy", {}, REJECT),
    ("J2-2016-format-attr", '"a{0.__class__}b".format(42)', "policy", {}, REJECT),
    ("J2-2019-format_map", '"{x.__class__}".format_map(lead)', "policy", {}, REJECT),
    ("J2-2024-indirect-format-ref", "coalesce(lead.email.format, 1)", "policy", {}, REJECT),
    ("J2-2024-stored-format-ref", "[lead.email.format][0]", "policy", {}, REJECT),
    ("J2-2025-attr-filter-format", 'lead.any["format"]', "wide", {"any": {"format": "{0.__class__}"}}, VALUE),
    ("ARMIN-format-width-literal", '"{:999999999}"', "policy", {}, VALUE),
    ("ARMIN-format-width-call", '"{:999999999}".format(1)', "policy", {}, REJECT),
    ("ARMIN-format-builtin", 'format(1, "999999999")', "policy", {}, REJECT),
    ("ARMIN-percent-width-literal", '"%0999999999d" % 1', "policy", {}, REJECT),
    ("ARMIN-percent-width-runtime", "lead.any % 1", "wide", {"any": "%0999999999d"}, EVAL_ERROR),
    ("ARMIN-percent-mapping-runtime", "lead.any % lead.company", "wide", {"any": "%(k)s", "company": {"k": "v"}}, ANY),
    ("ARMIN-fstring-class", 'f"{lead.__class__}"', "policy", {}, REJECT),
    ("ARMIN-fstring-width", 'f"{1:{999999999}}"', "policy", {}, REJECT),
    ("ARMIN-fstring-conversion", 'f"{lead!r}"', "policy", {}, REJECT),
    # ---- generator / frame / code / globals attributes ----------------------------------------------
    ("SE-138-gi_frame", "lead.gi_frame.f_globals", "policy", {}, REJECT),
    ("SE-138-gi_frame-untyped-is-data", "lead.any.gi_frame", "wide", {"any": {"gi_frame": "just data"}}, VALUE),
    ("SE-138-f_globals-untyped", "lead.any.gi_frame.f_globals", "wide", {"any": {"gi_frame": {"f_globals": 1}}}, VALUE),
    ("SE-138-cr_frame-untyped-absent", "lead.any.cr_frame", "wide", {"any": {}}, VALUE),
    ("SE-138-f_back-on-string", "lead.any.f_back", "wide", {"any": "a string"}, EVAL_ERROR),
    ("SE-138-gi_code", "lead.company.gi_code", "policy", {}, REJECT),
    ("SE-15-func_globals", "present.func_globals", "policy", {}, REJECT),
    ("SE-15-__globals__", "present.__globals__", "policy", {}, REJECT),
    ("SE-15-bare-helper", "present", "policy", {}, REJECT),
    ("SE-15-helper-as-argument", "coalesce(present, 1)", "policy", {}, REJECT),
    ("SE-15-helper-in-list", "[min, max]", "policy", {}, REJECT),
    ("SE-15-__builtins__", "lead.__builtins__", "policy", {}, REJECT),
    ("SE-15-subscript-dunder", 'lead["__class__"]', "policy", {}, REJECT),
    ("SE-15-subscript-dunder-untyped", 'lead.any["__globals__"]', "wide", {"any": {}}, REJECT),
    ("SE-81-builtin-name", "__import__", "policy", {}, REJECT),
    ("SE-81-builtin-call", 'open("/etc/passwd")', "policy", {}, REJECT),
    ("SE-81-getattr", 'getattr(lead, "__class__")', "policy", {}, REJECT),
    ("SE-81-type", "type(lead)", "policy", {}, REJECT),
    ("SE-81-eval", 'eval("1")', "policy", {}, REJECT),
    ("NED-subclasses", "().__class__.__bases__[0].__subclasses__()", "policy", {}, REJECT),
    ("NED-subclasses-comprehension", '[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "catch_warnings"]', "policy", {}, REJECT),
    ("NED-lambda-code", "(lambda: 0).__code__.co_consts", "policy", {}, REJECT),
    ("NED-code-constructor", 'lead.__class__.__init__.__code__', "policy", {}, REJECT),
    ("NE-323-lambda-default-bomb", '(lambda fc=(lambda n: [c for c in ().__class__.__bases__[0].__subclasses__() if c.__name__ == n][0]): fc("function"))()', "policy", {}, REJECT),
    ("NE-CVE-import-os", '__import__("os").system("id")', "policy", {}, REJECT),
    ("PD-EVAL-at-local", "@pd.compat.os.system", "policy", {}, REJECT),
    ("AE-86-reduce", "lead.__reduce__()", "policy", {}, REJECT),
    ("AE-86-reduce_ex", "lead.__reduce_ex__(2)", "policy", {}, REJECT),
    ("AE-GHSA-private-attr", "lead._view", "policy", {}, REJECT),
    ("AE-32-mro", "lead.mro", "policy", {}, REJECT),
    ("SE-199-operator-attrgetter", 'attrgetter("__class__")(lead)', "policy", {}, REJECT),
    ("SE-199-set-of-objects", "{lead.company}", "policy", {}, EVAL_ERROR),
    ("SE-199-frozenset-value", '{"a", "b"} == {"b", "a"}', "policy", {}, VALUE),
    ("SE-CVE-locals", "locals()", "policy", {}, REJECT),
    ("SE-CVE-globals-name", "_MISSING", "policy", {}, REJECT),
    ("SE-CVE-runtime-global", "_f_present(lead)", "policy", {}, REJECT),
    ("SE-CVE-runtime-global-evaluation-error", "_evaluation_error", "policy", {}, REJECT),
    ("SE-CVE-starred", "max(*lead.activities)", "policy", {}, REJECT),
    ("SE-CVE-kwargs", "round(1, **lead)", "policy", {}, REJECT),
    # ---- dunder look-alikes after NFKC normalisation (PEP 3131) -------------------------------------
    ("PEP3131-fullwidth-lowline-dunder", "_＿class_＿", "policy", {}, REJECT),
    ("PEP3131-fullwidth-attr-dunder", "lead.＿＿class＿＿", "policy", {}, REJECT),
    ("PEP3131-fullwidth-letter", "lead.ｅmail", "policy", {}, REJECT),
    ("PEP3131-math-bold", "lead.𝐞mail", "policy", {}, REJECT),
    ("PEP3131-math-italic-dunder", "lead.__𝘤𝘭𝘢𝘴𝘴__", "policy", {}, REJECT),
    ("PEP3131-math-script-name", "𝓵𝓮𝓪𝓭.email", "policy", {}, REJECT),
    ("PEP3131-fullwidth-name", "ｌｅａｄ", "policy", {}, REJECT),
    ("PEP3131-ligature", "lead.ﬁrst_name", "policy", {}, REJECT),
    ("PEP3131-superscript", "lead.employeesᵃ", "policy", {}, REJECT),
    ("TROJAN-cyrillic-homoglyph", "leаd.email", "policy", {}, REJECT),
    ("TROJAN-greek-homoglyph", "lead.cοuntry", "policy", {}, REJECT),
    ("PEP3131-fullwidth-key-is-data", 'lead.any["ｃlass"]', "wide", {"any": {"class": 1}}, VALUE),
    ("PEP3131-fullwidth-dunder-key", 'lead.any["__ｃlass__"]', "wide", {"any": {}}, REJECT),
    # ---- mutation of the lead -------------------------------------------------------------------------
    ("SE-65-assignment", "lead.email = 1", "policy", {}, REJECT),
    ("SE-65-walrus", "(x := lead)", "policy", {}, REJECT),
    ("SE-65-aug-assign", "lead.employees += 1", "policy", {}, REJECT),
    ("SE-65-del", "del lead.email", "policy", {}, REJECT),
    ("J2-MUT-update", 'lead.update({"email": "x"})', "policy", {}, REJECT),
    ("J2-MUT-clear", "lead.company.clear()", "policy", {}, REJECT),
    ("J2-MUT-append", "lead.activities.append(1)", "policy", {}, REJECT),
    ("J2-MUT-setdefault", 'lead.setdefault("x", 1)', "policy", {}, REJECT),
    ("J2-MUT-pop", 'lead.company.pop("name")', "policy", {}, REJECT),
    ("J2-MUT-or-merge", 'lead | {"email": 1}', "policy", {}, REJECT),
    ("J2-MUT-dict-method-untyped", 'lead.any.update', "wide", {"any": {"update": 1}}, VALUE),
    ("J2-MUT-multi-statement", "lead; lead", "policy", {}, REJECT),
    ("J2-MUT-newline-statement", "lead\nlead", "policy", {}, REJECT),
    # ---- DoS: powers and shifts -------------------------------------------------------------------------
    ("HIVE-POW-tower", "10**10**10", "policy", {}, ANY),
    ("HIVE-POW-9-tower", "9**9**9**9", "policy", {}, ANY),
    ("SE-122-100000-pow", "100000 ** 100000", "policy", {}, ANY),
    ("HIVE-POW-just-over", "2 ** 1025", "policy", {}, ANY),
    ("HIVE-POW-repeated-mul", "(2**1000) * (2**1000) * (2**1000)", "policy", {}, ANY),
    ("HIVE-POW-float-overflow", "10.0 ** 400", "policy", {}, EVAL_ERROR),
    ("HIVE-POW-negative-exponent", "2 ** -100000", "policy", {}, ANY),
    ("HIVE-POW-complex", "(-8) ** 0.5", "policy", {}, EVAL_ERROR),
    ("HIVE-POW-runtime-base", "lead.n ** lead.n", "wide", {"n": 2**40}, ANY),
    ("HIVE-POW-runtime-untyped", "lead.any ** 1000", "wide", {"any": 10**300}, ANY),
    ("HIVE-POW-shift-left", "1 << 10000000", "policy", {}, REJECT),
    ("HIVE-POW-shift-right", "lead.employees >> 1", "policy", {}, REJECT),
    ("HIVE-POW-bitand", "lead.employees & 1", "policy", {}, REJECT),
    ("HIVE-POW-invert", "~lead.employees", "policy", {}, REJECT),
    ("HIVE-POW-int-to-str", "round(1e308)", "policy", {}, VALUE),
    ("HIVE-POW-float-floordiv", "10**300 // 10**-300", "policy", {}, ANY),
    ("HIVE-POW-huge-int-division", "(2**1000 * 2**20 + 2**1000 * 2**20) / 3", "policy", {}, ANY),
    # ---- DoS: string methods ------------------------------------------------------------------------------
    ("J2-MUL-ljust", "lead.email.ljust(999999999)", "policy", {}, REJECT),
    ("J2-MUL-zfill", "lead.email.zfill(999999999)", "policy", {}, REJECT),
    ("J2-MUL-center", "lead.email.center(999999999)", "policy", {}, REJECT),
    ("J2-MUL-rjust", '"a".rjust(10**9)', "policy", {}, REJECT),
    ("J2-MUL-replace", 'lead.email.replace("", "x" * 1000)', "policy", {}, REJECT),
    ("J2-MUL-join", '"x".join(lead.email)', "policy", {}, REJECT),
    ("J2-MUL-expandtabs", '"\\t".expandtabs(999999999)', "policy", {}, REJECT),
    ("J2-MUL-helper-ljust", "ljust(lead.email, 999999999)", "policy", {}, REJECT),
    ("J2-MUL-helper-zfill", "zfill(lead.email, 999999999)", "policy", {}, REJECT),
    ("J2-MUL-untyped-method-name-is-data", "lead.any.ljust", "wide", {"any": {"ljust": 1}}, VALUE),
    # ---- DoS: string / list multiplication and concatenation --------------------------------------------
    ("J2-MUL-string-literal", '"A" * 10**9', "policy", {}, REJECT),
    ("J2-MUL-list-literal", "[1] * 10**9", "policy", {}, REJECT),
    ("HIVE-MUL-untyped-string", "lead.any * 1000000000", "wide", {"any": "A"}, EVAL_ERROR),
    ("HIVE-MUL-untyped-string-reversed", "1000000000 * lead.any", "wide", {"any": "A"}, EVAL_ERROR),
    ("HIVE-MUL-untyped-list", "lead.any * 1000000000", "wide", {"any": [1, 2]}, EVAL_ERROR),
    ("HIVE-MUL-runtime-count", "lead.any * lead.n", "wide", {"any": "AB", "n": 10**9}, EVAL_ERROR),
    ("HIVE-MUL-bool-count", "lead.any * True", "wide", {"any": "AB"}, ANY),
    ("HIVE-MUL-at-limit", "lead.any * 100000", "wide", {"any": "A"}, VALUE),
    ("HIVE-MUL-concat-large", "lead.s + lead.s + lead.s", "wide", {"s": R100K}, EVAL_ERROR),
    ("HIVE-MUL-concat-untyped-list", "lead.any + lead.any", "wide", {"any": list(range(8000))}, EVAL_ERROR),
    ("HIVE-MUL-concat-literal-chain", " + ".join(['"' + "x" * 90 + '"'] * 20), "policy", {}, ANY),
    # ---- DoS: comprehensions, nesting, literals, length ------------------------------------------------
    ("SE-81-listcomp", "[a for a in lead.activities]", "policy", {}, REJECT),
    ("SE-81-nested-comprehension-bomb", "[[1 for a in range(10**4)] for b in range(10**4)]", "policy", {}, REJECT),
    ("SE-81-genexp", "sum(1 for a in lead.activities)", "policy", {}, REJECT),
    ("SE-81-setcomp", "{a for a in lead.activities}", "policy", {}, REJECT),
    ("SE-81-dictcomp", "{a: a for a in lead.activities}", "policy", {}, REJECT),
    ("SE-81-dict-literal", '{"a": 1}', "policy", {}, REJECT),
    ("SE-81-slice", "lead.email[::-1]", "policy", {}, REJECT),
    ("SE-81-computed-subscript", "lead.activities[lead.employees]", "policy", {}, REJECT),
    ("AE-100-paren-soup", "()" * 1_000_000, "policy", {}, REJECT),
    ("AE-100-long-expression", "1 + " * 600 + "1", "policy", {}, REJECT),
    ("AE-100-deep-parens", "(" * 500 + "1" + ")" * 500, "policy", {}, REJECT),
    ("AE-100-deep-lists", "[" * 900 + "]" * 900, "policy", {}, REJECT),
    ("AE-100-deep-unary-minus", "-" * 1990 + "1", "policy", {}, REJECT),
    ("AE-100-deep-not", "not " * 450 + "True", "policy", {}, REJECT),
    ("AE-100-deep-ifexp", "1 if " * 300 + "True" + " else 1" * 300, "policy", {}, REJECT),
    ("AE-100-deep-binop-chain", "+".join(["1"] * 45), "policy", {}, REJECT),
    ("AE-100-many-nodes", "[" + ", ".join(["1"] * 600) + "]", "policy", {}, REJECT),
    ("AE-100-ten-megabytes", "1" * 10_000_000, "policy", {}, REJECT),
    ("SE-122-huge-int-literal", "9" * 1990, "policy", {}, REJECT),
    ("SE-122-huge-hex-literal", "0x" + "f" * 1990, "policy", {}, REJECT),
    ("SE-122-float-literal-inf", "1e309", "policy", {}, REJECT),
    ("SE-122-long-string-literal", '"' + "x" * 1990 + '"', "policy", {}, VALUE),
    ("SE-122-chained-compare", " < ".join(["1"] * 200), "policy", {}, ANY),
    # ---- regular expressions ------------------------------------------------------------------------------
    ("REDOS-nested-quantifier", 'matches(lead.s, "^(a+)+$")', "wide", {"s": "a" * 5000 + "!"}, VALUE),
    ("REDOS-alternation", 'matches(lead.s, "^(a|aa)+$")', "wide", {"s": "a" * 5000 + "!"}, VALUE),
    ("REDOS-backreference", 'matches(lead.s, "(a)\\\\1")', "wide", {}, REJECT),
    ("REDOS-lookahead", 'matches(lead.s, "(?=a)a")', "wide", {}, REJECT),
    ("REDOS-repeat-bomb", 'matches(lead.s, "((a{100}){100}){100}")', "wide", {}, REJECT),
    ("REDOS-dynamic-pattern", "matches(lead.s, lead.s)", "wide", {}, REJECT),
    # RE2 is linear in the input, but the constant is the compiled program size: a 20-character class
    # repetition compiles to ~270 000 instructions and each search of a 100 000-character string takes ~0.5 s.
    ("REDOS-re2-program-size", 'matches(lead.s, "[\\\\pL\\\\pN]{1,200}z") or matches(lead.s, "(\\\\pL|\\\\pN|\\\\pP){1,150}q") or matches(lead.s, "[\\\\pL\\\\pN]{1,190}y")', "wide", {"s": R100K}, ANY),
    # ---- bidi / NUL / invisible characters -----------------------------------------------------------------
    ("TROJAN-rlo-in-string", 'lead.email == "admin\u202e\u2066"', "policy", {}, REJECT),
    ("TROJAN-lri-in-code", "lead.email\u2066 == 1", "policy", {}, REJECT),
    ("TROJAN-rlm", 'lead.email == "\u200f"', "policy", {}, REJECT),
    ("TROJAN-nul", "lead.email == 1\x00", "policy", {}, REJECT),
    ("TROJAN-nul-in-string", 'lead.email == "a\x00"', "policy", {}, REJECT),
    ("TROJAN-zero-width-space", 'lead.email == "\u200b"', "policy", {}, REJECT),
    ("TROJAN-zwj-in-identifier", "le\u200dad.email", "policy", {}, REJECT),
    ("TROJAN-bom", "\ufefflead.email", "policy", {}, REJECT),
    ("TROJAN-form-feed", "lead.email\x0c== 1", "policy", {}, REJECT),
    ("TROJAN-escape-sequences-are-data", 'lead.email == "\\u202e\\x00"', "policy", {}, VALUE),
]

IDS = [c[0] for c in CASES]
assert len(IDS) == len(set(IDS)), "duplicate case id"

CASE_TIME_LIMIT = 1.0  # seconds: load (parse + check + compile) and evaluation, each
CASE_MEMORY_LIMIT_MB = 100  # growth of the worker's peak RSS attributable to one case
WORKER_ADDRESS_SPACE_MB = 1024  # hard ceiling above the worker's baseline: a blow-up fails, never swaps
HANG_SECONDS = 20  # a case without a result after this long is recorded as a hang


# --------------------------------------------------------------------------------------------------------
# The worker (this file run as a script): reads cases as JSON on stdin, prints one JSON line per event.


def _expand(value):
    if isinstance(value, str) and value.startswith("@@REPEAT:"):
        _, unit, count = value.split(":")
        return unit * int(count)
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    return value


def _plain(value, depth: int = 0) -> bool:
    """Is `value` plain data (what a lead view or an expression may hold)? No callables, types, frames."""
    from datetime import datetime

    from engine.expr import MISSING

    if depth > 50:
        return False
    if value is MISSING or value is None or type(value) in (bool, int, float, str, datetime):
        return True
    if type(value) in (tuple, list, frozenset):
        return all(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict) and type(value).__module__ in ("builtins", "engine.leads"):
        return all(type(k) is str and _plain(v, depth + 1) for k, v in value.items())
    return False


def _worker() -> None:  # pragma: no cover - runs in the child
    import copy
    import resource
    from datetime import datetime, timezone

    sys.path.insert(0, str(REPO))
    import engine
    from engine.errors import EvaluationError, ExpressionError
    from engine.expr import DATETIME, Scope, compile_expression
    from engine.leads import LeadSchema

    ps = engine.load_policies(str(REPO / "policies"))
    wide = LeadSchema.from_json_schema(WIDE_SCHEMA)
    wide_scope = Scope({"lead": wide.type, "now": DATETIME})
    now = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    ps.evaluate_expression("lead.email", dict(BASE_LEAD), now)  # warm caches before measuring
    with open("/proc/self/statm") as f:
        vm_bytes = int(f.read().split()[0]) * resource.getpagesize()
    limit = vm_bytes + WORKER_ADDRESS_SPACE_MB * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    cases = json.loads(sys.stdin.read())

    def emit(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    def outcome(fn):
        try:
            value = fn()
            return {"kind": "value", "plain": _plain(value), "type": type(value).__name__}
        except ExpressionError as exc:
            return {"kind": "rejected", "code": exc.code, "column": exc.column, "message": exc.message}
        except EvaluationError as exc:
            return {"kind": "eval_error", "code": exc.code, "message": exc.message}
        except MemoryError:
            return {"kind": "memory", "message": "MemoryError"}
        except BaseException as exc:  # noqa: BLE001 - a crash is what we are looking for
            return {"kind": "crash", "message": f"{type(exc).__name__}: {exc}"[:500]}

    for case_id, source, scope, overrides, _expect in cases:
        emit({"id": case_id, "event": "start"})
        base = BASE_LEAD if scope == "policy" else {"activities": []}
        raw = _expand({**copy.deepcopy(base), **overrides})
        before = copy.deepcopy(raw)
        peak0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        if scope == "policy":
            result = outcome(lambda: ps.evaluate_expression(source, raw, now))
            load_s, eval_s = None, time.perf_counter() - t0
            ref = None
        else:
            view = wide.prepare(raw)
            compiled_box = {}

            def load():
                compiled_box["c"] = compile_expression(source, wide_scope)
                return True

            result = outcome(load)
            load_s = time.perf_counter() - t0
            eval_s, ref = 0.0, None
            if result["kind"] == "value":
                t1 = time.perf_counter()
                result = outcome(lambda: compiled_box["c"].fn(view, now))
                eval_s = time.perf_counter() - t1
                ref = outcome(lambda: compiled_box["c"].reference(view, now))["kind"]
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak0) / 1024
        emit({"id": case_id, "event": "end", **result, "load_s": load_s, "eval_s": eval_s,
              "mem_mb": grown_mb, "lead_unchanged": raw == before, "ref": ref})


# --------------------------------------------------------------------------------------------------------
# The parent: run the worker, restart it after a hang, collect one result per case.


def _run_cases(cases: list) -> dict[str, dict]:
    results: dict[str, dict] = {}
    pending = list(cases)
    while pending:
        proc = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=str(REPO), env={**os.environ, "PYTHONHASHSEED": "0"})
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(pending).encode())
        proc.stdin.close()
        current, buffer = None, b""
        deadline = time.monotonic() + 120  # imports and policy load
        while True:
            ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break  # hang
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break  # worker exited
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                event = json.loads(line)
                if event["event"] == "start":
                    current = event["id"]
                    deadline = time.monotonic() + HANG_SECONDS
                else:
                    results[event["id"]] = event
                    current = None
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        stderr = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
        done = set(results)
        if current is not None:
            results[current] = {"id": current, "kind": "hang_or_killed",
                                "message": f"no result (hang > {HANG_SECONDS}s or killed): {stderr[-800:]}"}
            done.add(current)
        elif not any(c[0] not in done for c in pending):
            break
        remaining = [c for c in pending if c[0] not in done]
        if len(remaining) == len(pending):  # the worker died before its first case
            for c in remaining:
                results[c[0]] = {"id": c[0], "kind": "worker_failed", "message": stderr[-2000:]}
            break
        pending = remaining
    return results


@pytest.fixture(scope="module")
def results() -> dict[str, dict]:
    return _run_cases(CASES)


def _ref(case_id: str) -> str:
    return REFS[next(k for k in sorted(REFS, key=len, reverse=True) if case_id.startswith(k))]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_advisory_case(case, results) -> None:
    case_id, source, scope, overrides, expect = case
    r = results[case_id]
    where = f"[{case_id}] source: {_ref(case_id)}\n  expression: {source[:200]!r}\n  result: {r}"
    assert r["kind"] in ("rejected", "value", "eval_error"), f"crash, hang or memory blow-up\n{where}"
    if r["kind"] == "rejected":
        assert r["code"].startswith("EXPR"), where
        assert isinstance(r["column"], int) and r["column"] >= 1, f"rejection is not located\n{where}"
    if r["kind"] == "eval_error":
        assert r["code"].startswith("EVAL"), where
        assert "resource limit hit" not in r["message"], f"hit the process memory/recursion limit\n{where}"
    if r["kind"] == "value":
        assert r["plain"], f"returned a non-data object ({r['type']})\n{where}"
    expected = {REJECT: ("rejected",), VALUE: ("value",), EVAL_ERROR: ("eval_error",),
                ANY: ("rejected", "value", "eval_error")}[expect]
    assert r["kind"] in expected, f"expected {expect}\n{where}"
    if r.get("load_s") is not None:
        assert r["load_s"] < CASE_TIME_LIMIT, f"load took {r['load_s']:.2f}s\n{where}"
    assert r["eval_s"] < CASE_TIME_LIMIT, f"evaluation took {r['eval_s']:.2f}s (limit {CASE_TIME_LIMIT}s)\n{where}"
    assert r["mem_mb"] < CASE_MEMORY_LIMIT_MB, f"peak memory grew {r['mem_mb']:.0f} MB\n{where}"
    assert r["lead_unchanged"], f"the lead passed in was modified\n{where}"
    if r.get("ref") is not None:
        assert r["ref"] == r["kind"], f"simpleeval reference disagrees ({r['ref']})\n{where}"


def test_every_case_cites_a_source() -> None:
    for case_id in IDS:
        assert _ref(case_id)


# --------------------------------------------------------------------------------------------------------
# In-process checks that need objects, not just outcomes


def test_generated_code_has_no_builtins_and_no_modules(policy_set) -> None:
    """Ned Batchelder's escapes all start from __builtins__ or a module reachable from globals."""
    import types

    from engine.expr import Scope, compile_expression

    scope = Scope({"lead": policy_set.lead_schema.type})
    fn = compile_expression('lead.email == "x" and lead.employees ** 2 > 1', scope).fn
    assert fn.__globals__["__builtins__"] == {}
    for name, value in fn.__globals__.items():
        assert not isinstance(value, types.ModuleType), name
        assert not isinstance(value, type) or issubclass(value, BaseException) or name == "__builtins__", name


def test_lead_view_is_read_only_and_input_untouched(policy_set) -> None:
    """Jinja's ImmutableSandboxedEnvironment idea: what expressions see cannot be changed (J2-MUT)."""
    import copy
    from datetime import datetime, timezone

    raw = json.loads((REPO / "scenarios/leads/icp-enterprise-brisbane.json").read_text())
    before = copy.deepcopy(raw)
    view = policy_set.prepare(raw)
    for mutate in (lambda: view.__setitem__("email", "x"), lambda: view.update(email="x"), lambda: view.pop("email"),
                   lambda: view.clear(), lambda: view.setdefault("x", 1), lambda: view.popitem(),
                   lambda: view.__delitem__("id"), lambda: view["company"].__setitem__("name", "x")):
        with pytest.raises(TypeError):
            mutate()
    with pytest.raises((TypeError, AttributeError)):
        view["activities"].append(1)  # type: ignore[union-attr]
    policy_set.evaluate(raw, datetime(2026, 11, 23, tzinfo=timezone.utc), explain=True)
    assert raw == before


@pytest.mark.parametrize("expression, ref", [
    ("{1, 2}", "SE-199"), ('{"a", lead.email}', "SE-199"), ("1e308 * 10", "SE-122"),
    ("(1e308 * 10) - (1e308 * 10)", "SE-122"), ("lead.activities", "SE-81"),
])  # fmt: skip
def test_cli_expr_prints_strict_json_or_a_typed_error(expression: str, ref: str, sec) -> None:
    """`leadops expr` must print RFC 8259 JSON (no NaN/Infinity, no crash on a set value) or exit 1 with a message."""
    proc = sec.leadops("expr", expression, "--lead", "scenarios/leads/icp-enterprise-brisbane.json", "--now", sec.NOW,
                       timeout=60)
    sec.assert_no_traceback(proc)
    if proc.returncode == 0:
        def strict(constant: str):
            raise ValueError(f"{constant} is not JSON")

        json.loads(proc.stdout, parse_constant=strict)
    else:
        assert proc.returncode == 1 and proc.stderr.startswith(b"error:"), proc.stderr


if __name__ == "__main__":
    _worker()
