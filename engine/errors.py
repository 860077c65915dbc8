"""Diagnostics and error types shared by every engine module.

A user error in leadops is never a traceback: it is a `Diagnostic` that says where (file:line:column),
what (a stable code and a message) and how to fix it (a hint). Modules collect diagnostics instead of
raising on the first problem, so one run reports every error in a policy set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, order=True)
class Location:
    """A position in a source file; line and column are 1-based (0 means unknown)."""

    file: str = ""
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if not self.file:
            return "<input>"
        if not self.line:
            return self.file
        return f"{self.file}:{self.line}:{self.column or 1}"

    def shifted(self, column_offset: int) -> "Location":
        """The location `column_offset` characters further along the same line."""
        return Location(self.file, self.line, (self.column or 1) + column_offset)


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a policy set, a scenario file or an input record."""

    code: str
    message: str
    location: Location = field(default_factory=Location)
    hint: str = ""
    severity: str = "error"

    def sort_key(self) -> tuple[Any, ...]:
        return (self.location.file, self.location.line, self.location.column, self.code, self.message)

    def format(self) -> str:
        text = f"{self.location}: {self.severity}[{self.code}]: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "file": self.location.file,
            "line": self.location.line,
            "column": self.location.column,
            "message": self.message,
            "hint": self.hint,
        }


class LeadopsError(Exception):
    """Base class of every error leadops raises for a user's mistake (never for its own bugs)."""


class PolicyError(LeadopsError):
    """A policy set could not be loaded; `diagnostics` lists every problem found, sorted by location."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = sorted(diagnostics, key=Diagnostic.sort_key)
        count = len(self.diagnostics)
        first = self.diagnostics[0].format() if self.diagnostics else "unknown error"
        super().__init__(f"{count} error(s) in policy set; first: {first}")


class ExpressionError(LeadopsError):
    """An expression was rejected at load time (syntax, forbidden construct, limit, unknown name, type)."""

    def __init__(self, code: str, message: str, column: int = 0, hint: str = ""):
        self.code = code
        self.message = message
        self.column = column  # 1-based column inside the expression text, 0 when unknown
        self.hint = hint
        super().__init__(message)


class EvaluationError(LeadopsError):
    """An expression failed while evaluating one lead (a limit was hit or a value had the wrong type)."""

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(message)


class LeadError(LeadopsError):
    """A lead record is malformed or does not match the lead schema; `field` names the failing field."""

    def __init__(self, message: str, field: str = "", code: str = "LEAD001"):
        self.message = message
        self.field = field
        self.code = code
        super().__init__(f"{field}: {message}" if field else message)
