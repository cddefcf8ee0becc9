"""django-filter, as saltant configures it: ``<field>`` or ``<field>__<lookup>`` query params -> SQL.

Unknown parameters and empty values are ignored (as django-filter does); a value a lookup cannot use
(a bad date, a non-integer id) is a 400 ``{"<param>": ["..."]}``. Lookups per kind:

* CHAR: exact, contains, in, startswith, endswith, regex (linear time, see ``testing/regex.py``;
  a pattern it will not run is a 400)
* BOOL: exact
* FK: exact, in (by integer id)
* DATE: exact, year, range, lt, lte, gt, gte (on a datetime column stored as epoch seconds)
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from .. import regex
from .forms import as_pk, in_range

__all__ = ["FilterError", "CHAR", "BOOL", "FK", "DATE", "compile_filters"]

CHAR, BOOL, FK, DATE = "char", "bool", "fk", "date"

LOOKUPS = {
    CHAR: ("exact", "contains", "in", "startswith", "endswith", "regex"),
    BOOL: ("exact",),
    FK: ("exact", "in"),
    DATE: ("exact", "year", "range", "lt", "lte", "gt", "gte"),
}

_TRUE = {"true", "True", "1", "yes", "on"}
_FALSE = {"false", "False", "0", "no", "off"}


class FilterError(Exception):
    """A filter value that cannot be used: becomes a DRF 400 body."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(errors)
        self.errors = errors


# django.utils.dateparse.datetime_re: what django-filter's IsoDateTimeField accepts (a time
# is required: a bare date is "Enter a valid date/time.").
_DATETIME = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})"
    r"[T ](?P<hour>\d{1,2}):(?P<minute>\d{1,2})"
    r"(?::(?P<second>\d{1,2})(?:\.(?P<microsecond>\d{1,6})\d{0,6})?)?"
    r"(?P<tzinfo>Z|[+-]\d{2}(?::?\d{2})?)?$",
    re.ASCII,
)


def _instant(value: str) -> float:
    match = _DATETIME.match(value.strip())
    if match is None:
        raise ValueError(value)
    parts = match.groupdict()
    tz = parts.pop("tzinfo")
    micro = (parts.pop("microsecond") or "").ljust(6, "0")
    fields = {k: int(v) for k, v in parts.items() if v is not None}
    zone = dt.timezone.utc  # naive: the active time zone, UTC for token users (protocol §11)
    if tz and tz != "Z":
        offset = int(tz[1:3]) * 60 + int(tz[-2:] if len(tz) > 3 else 0)
        zone = dt.timezone(dt.timedelta(minutes=-offset if tz[0] == "-" else offset))
    return dt.datetime(**fields, microsecond=int(micro), tzinfo=zone).timestamp()


def compile_filters(
    query: Mapping[str, str], fields: Mapping[str, tuple[str, str]]
) -> tuple[str, list[Any], list[tuple[str, str]]]:
    """A WHERE clause (``"1"`` when nothing applies), its parameters, and the regex filters.

    ``fields`` maps a filter name to (kind, SQL column). Regex filters are not in the SQL:
    they come back as (column, pattern), checked already (a pattern the platform will not
    run raised :class:`FilterError`), for the caller to match off the store's thread.
    """
    clauses: list[str] = []
    params: list[Any] = []
    regexes: list[tuple[str, str]] = []
    errors: dict[str, list[str]] = {}
    for param, value in query.items():
        name, _, lookup = param.partition("__")
        # user__username is one field name with a double underscore in it
        if name == "user" and lookup.startswith("username"):
            name, _, lookup = "user__username", None, lookup[len("username") :].lstrip("_")
        lookup = lookup or "exact"
        spec = fields.get(name)
        if spec is None or lookup not in LOOKUPS[spec[0]]:
            continue
        kind, column = spec
        if value == "":
            continue  # django-filter skips empty values (EMPTY_VALUES): no filter, not an error
        if kind == CHAR and lookup == "regex":
            try:
                regex.compile_pattern(value)
            except regex.BadPattern:
                clauses.append("0")  # a pattern no engine accepts matches nothing
            except regex.RegexRefused as exc:
                errors[param] = [str(exc)]
            else:
                regexes.append((column, value))
            continue
        try:
            clause, values = _clause(kind, column, lookup, value)
        except (ValueError, OverflowError) as exc:
            errors[param] = [str(exc)]
            continue
        if clause:
            clauses.append(clause)
            params.extend(values)
    if errors:
        raise FilterError(errors)
    return (" AND ".join(clauses) or "1"), params, regexes


def _clause(kind: str, column: str, lookup: str, value: str) -> tuple[str, list[Any]]:
    if kind == CHAR:
        if lookup == "exact":
            return f"{column} = ?", [value]
        if lookup == "contains":
            return f"instr({column}, ?) > 0", [value]
        if lookup == "startswith":
            return f"substr({column}, 1, length(?)) = ?", [value, value]
        if lookup == "endswith":
            return f"(length(?) = 0 OR substr({column}, -length(?)) = ?)", [value, value, value]
        items = [v for v in value.split(",")]
        return f"{column} IN ({','.join('?' * len(items))})", items
    if kind == BOOL:
        if value in _TRUE:
            return f"{column} = 1", []
        if value in _FALSE:
            return f"{column} = 0", []
        return "", []  # NullBooleanField: anything else means "no filter"
    if kind == FK:
        ids = [as_pk(v) for v in (value.split(",") if lookup == "in" else [value])]
        if not all(i is not None and in_range(i) for i in ids):
            raise ValueError("Select a valid choice. That choice is not one of the available choices.")
        return f"{column} IN ({','.join('?' * len(ids))})", ids
    # DATE
    try:
        if lookup == "year":
            year = int(value)
            start = dt.datetime(year, 1, 1, tzinfo=dt.timezone.utc).timestamp()
            end = dt.datetime(year + 1, 1, 1, tzinfo=dt.timezone.utc).timestamp()
            return f"({column} >= ? AND {column} < ?)", [start, end]
        if lookup == "range":
            bounds = [_instant(v) for v in value.split(",")]  # each checked, then their number
        else:
            instant = _instant(value)
    except ValueError:
        raise ValueError("Enter a valid date/time.") from None
    if lookup == "range":
        if len(bounds) != 2:
            raise ValueError("Range query expects two values.")
        return f"({column} >= ? AND {column} <= ?)", bounds
    op = {"exact": "=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}[lookup]
    return f"{column} {op} ?", [instant]
