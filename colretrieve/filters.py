"""Filter expressions as users type them (`query --filter 'page>=2' --filter 'file in (a.pdf,b.pdf)'`),
read into the filter dict every store takes (storage/base.py).

    file=a.pdf          equal            page!=3             not equal
    page>=2, page<5     a range          file in (a.pdf,b)   any of them
    file not in (a,b)   none of them     draft / not draft   the field holds a value / holds none

Values that read as numbers are numbers, true and false are booleans; quotes keep a value as
text ('"2020"', '"true"').
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .errors import ColretrieveError

KEY = r"[A-Za-z_][A-Za-z0-9_.-]*"
_COMPARE = re.compile(rf"^\s*({KEY})\s*(>=|<=|!=|=|>|<)\s*(.+?)\s*$")
_IN = re.compile(rf"^\s*({KEY})\s+(not\s+in|in)\s*\((.*)\)\s*$")
_PRESENT = re.compile(rf"^\s*(not\s+)?({KEY})\s*$")
_BOUNDS = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}


def parse_filters(expressions: Iterable[str]) -> dict[str, Any]:
    """Every expression must hold; two on one field combine (`page>=2`, `page<5`)."""
    filter: dict[str, Any] = {}
    for expression in expressions:
        key, condition = _parse(expression)
        if key in filter and not (isinstance(filter[key], dict) and isinstance(condition, dict)):
            raise ColretrieveError(f"--filter {expression!r}: {key} is already matched to a value")
        if key in filter:
            clash = set(filter[key]) & set(condition)
            if clash:
                raise ColretrieveError(f"--filter {expression!r}: {key} already has {', '.join(sorted(clash))}")
            filter[key] = {**filter[key], **condition}
        else:
            filter[key] = condition
    return filter


def parse_metadata(items: Iterable[str]) -> dict[str, Any]:
    """`KEY=VALUE` items (`ingest --meta year=2021`), values read as filter values are."""
    meta: dict[str, Any] = {}
    for item in items:
        key, equals, raw = item.partition("=")
        if not equals or not re.fullmatch(KEY, key.strip()):
            raise ColretrieveError(f"--meta {item!r}: expected KEY=VALUE")
        meta[key.strip()] = _value(raw)
    return meta


def _parse(expression: str) -> tuple[str, Any]:
    if found := _IN.match(expression):
        key, how, items = found.groups()
        values = [_value(item) for item in items.split(",") if item.strip()]
        if not values:
            raise ColretrieveError(f"--filter {expression!r}: no values in the parentheses")
        return key, {"not": values} if how.startswith("not") else values
    if found := _COMPARE.match(expression):
        key, operator, raw = found.groups()
        value = _value(raw)
        if operator == "=":
            return key, value
        if operator == "!=":
            return key, {"not": value}
        if isinstance(value, (str, bool)):
            raise ColretrieveError(f"--filter {expression!r}: {operator} compares numbers, not {raw!r}")
        return key, {_BOUNDS[operator]: value}
    if found := _PRESENT.match(expression):
        negated, key = found.groups()
        return key, {"exists": not negated}
    raise ColretrieveError(f"--filter {expression!r}: expected FIELD=VALUE, FIELD!=VALUE, FIELD>=NUMBER (or >, <, "
                           "<=), FIELD in (A,B), FIELD not in (A,B), FIELD or not FIELD")


_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")


def _value(raw: str) -> Any:
    text = raw.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    if _INT.match(text):
        return int(text)
    return float(text) if _FLOAT.match(text) else text
