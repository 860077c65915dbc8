"""Parsing: the sandbox's text rules, then ``ast.parse(mode="eval")``, then the whitelist walk.

All rules and limits are in `engine.expr.sandbox`; this module is the entry point the checker uses.
"""

from __future__ import annotations

import ast

from engine.expr.sandbox import node_column, parse_checked

__all__ = ["parse", "node_column"]


def parse(source: str) -> ast.Expression:
    """Parse an untrusted expression; raises ExpressionError (EXPR001/002/006/007) with a 1-based column.

    The returned tree contains only whitelisted node types, operators, literal types and names that do
    not start with '_'. Names, fields and types are not checked here (see `engine.expr.check`).
    """
    return parse_checked(source)
