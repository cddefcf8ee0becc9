"""Request bodies read the way DRF serializers read them: form, multipart or JSON.

In HTML-input mode (form and multipart) a missing boolean is False and a missing
many-to-many is ``[]`` (DRF ``default_empty_html``), booleans arrive as strings and
JSON-typed fields as JSON text. With a JSON body the model defaults apply and values
are native. On a partial update (PATCH) missing fields are left untouched; so are they
on a full update (PUT) with a JSON body (DRF skips absent fields that are not required),
while in HTML-input mode a PUT still reads a missing boolean as False and a missing
many-to-many as ``[]``.
Errors collect per field, as DRF reports them (``{"field": ["msg", ...]}``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDictProxy

from .. import jsonbody

__all__ = ["Form", "NotADict", "read_form"]

_TRUE = {True, "true", "True", "TRUE", "1", "yes", "on"}
_FALSE = {False, "false", "False", "FALSE", "0", "no", "off"}
_MISSING = object()


async def read_form(request: web.Request, *, partial: bool = False, update: bool = False) -> Form:
    """Parse the body by content type; a malformed JSON body is a DRF 400 ``detail``.

    ``update`` is a full update (PUT): absent fields keep their stored values (JSON body).
    """
    ctype = request.content_type
    if ctype == "application/json":
        raw = await request.read()
        if not raw.strip():
            return Form({}, html=False, partial=partial, update=update)
        try:
            data = jsonbody.loads(raw)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if not isinstance(data, dict):
            raise NotADict(f"Invalid data. Expected a dictionary, but got {type(data).__name__}.")
        return Form(data, html=False, partial=partial, update=update)
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            fields = await request.post()
        except (ValueError, AssertionError, LookupError, RuntimeError, HttpProcessingError) as exc:
            # aiohttp's parsers raise these for a body that does not follow its content type
            # (no or a wrong boundary, undecodable bytes, an unknown charset, a cut-off part).
            kind = "Multipart form" if ctype == "multipart/form-data" else "Form"
            raise ParseError(f"{kind} parse error - {exc}") from None
        return Form(fields, html=True, partial=partial, update=update)
    if not request.body_exists or ctype in ("", "application/octet-stream"):
        return Form({}, html=True, partial=partial, update=update)
    if not (await request.read()):
        return Form({}, html=True, partial=partial, update=update)  # nothing to parse: no fields
    raise UnsupportedMediaType(f'Unsupported media type "{ctype}" in request.')


class ParseError(Exception):
    """400 ``{"detail": ...}``."""


class UnsupportedMediaType(Exception):
    """A body DRF has no parser for (saltant answers these with its empty 405)."""


class NotADict(Exception):
    """400 ``{"non_field_errors": [...]}``: a JSON body that is not an object."""


class Form:
    """One request body being validated into ``values`` (errors gathered in ``errors``)."""

    def __init__(self, data: Mapping[str, Any], *, html: bool, partial: bool, update: bool = False):
        self.data = data
        self.html = html
        self.partial = partial
        self.keep = partial or (update and not html)  # absent fields keep their stored values
        self.errors: dict[str, list[str]] = {}
        self.values: dict[str, Any] = {}

    def _get(self, name: str) -> Any:
        if name not in self.data:
            return _MISSING
        if self.html and isinstance(self.data, MultiDictProxy):
            return self.data.getone(name)
        return self.data[name]

    def _fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def _absent(self, name: str, value: Any, *, required: bool, default: Any) -> bool:
        """Handle a missing field; True when there is nothing more to do."""
        if value is not _MISSING:
            return False
        if self.partial:
            return True
        if required:
            self._fail(name, "This field is required.")
        elif not self.keep:
            self.values[name] = default
        return True

    def char(
        self,
        name: str,
        *,
        required: bool = False,
        default: Any = "",
        max_length: int | None = None,
        allow_blank: bool = True,
        allow_null: bool = False,
        regex: str | None = None,
        regex_message: str = "Enter a valid value.",
    ) -> None:
        value = self._get(name)
        if self._absent(name, value, required=required, default=default):
            return
        if value is None:
            if allow_null:
                self.values[name] = None
            else:
                self._fail(name, "This field may not be null.")
            return
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self._fail(name, "Not a valid string.")
            return
        value = str(value)
        if value.strip() == "":
            if not allow_blank:
                self._fail(name, "This field may not be blank.")
                return
            self.values[name] = value
            return
        if max_length is not None and len(value) > max_length:
            self._fail(name, f"Ensure this field has no more than {max_length} characters.")
            return
        if regex is not None and not re.search(regex, value):
            self._fail(name, regex_message)
            return
        self.values[name] = value

    def choice(self, name: str, choices: tuple[str, ...], *, required: bool = True) -> None:
        value = self._get(name)
        if self._absent(name, value, required=required, default=None):
            return
        if value not in choices:
            self._fail(name, f'"{value}" is not a valid choice.')
            return
        self.values[name] = value

    def boolean(self, name: str, *, default: bool) -> None:
        value = self._get(name)
        if value is _MISSING:
            if self.partial:
                return
            if self.html:
                self.values[name] = False
            elif not self.keep:
                self.values[name] = default
            return
        if isinstance(value, (str, int, bool)) and value in _TRUE:
            self.values[name] = True
        elif isinstance(value, (str, int, bool)) and value in _FALSE:
            self.values[name] = False
        else:
            self._fail(name, "Must be a valid boolean.")

    def json(self, name: str, *, default: Any) -> None:
        """DRF's JSONField: any JSON value (form text is parsed); the model checks its type."""
        value = self._get(name)
        if self._absent(name, value, required=False, default=default):
            return
        if self.html and isinstance(value, str):
            try:
                value = jsonbody.loads(value)
            except ValueError:
                self._fail(name, "Value must be valid JSON.")
                return
        self.values[name] = value

    def pk(self, name: str, *, required: bool = True) -> None:
        value = self._get(name)
        if self._absent(name, value, required=required, default=None):
            return
        parsed = as_pk(value)
        if parsed is None:
            self._fail(name, f"Incorrect type. Expected pk value, received {type(value).__name__}.")
            return
        if not in_range(parsed):
            self._fail(name, invalid_pk(value))
            return
        self.values[name] = parsed

    def pk_list(self, name: str) -> None:
        if name not in self.data:
            if not self.keep:
                self.values[name] = []
            return
        if self.html and isinstance(self.data, MultiDictProxy):
            raw: Any = self.data.getall(name)
        else:
            raw = self.data[name]
            if not isinstance(raw, list):
                self._fail(name, f'Expected a list of items but got type "{type(raw).__name__}".')
                return
        ids: list[int] = []
        for item in raw:
            parsed = as_pk(item)
            if parsed is None:
                self._fail(name, f"Incorrect type. Expected pk value, received {type(item).__name__}.")
                return
            if not in_range(parsed):
                self._fail(name, invalid_pk(item))
                return
            ids.append(parsed)
        self.values[name] = ids


# -- ids: the one parser of the service (paths, bodies, filters) ----------------------------

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_ASCII_INT = re.compile(r"-?[0-9]+")


def as_pk(value: Any) -> int | None:
    """An integer id from a body, a path or a filter; None when it is not an integer.

    Only ASCII digits make an id (``str.isdigit`` also accepts superscript and Arabic-Indic
    digits). An integer too long to be one (more than 19 digits) comes back as
    ``INT64_MAX + 1`` so that :func:`in_range` refuses it: no row can have it, and SQLite
    must never see it.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if _ASCII_INT.fullmatch(text):
            return int(text) if len(text.lstrip("-")) <= 19 else INT64_MAX + 1
    return None


def in_range(value: int) -> bool:
    """True for an integer SQLite can store (signed 64-bit)."""
    return INT64_MIN <= value <= INT64_MAX


def invalid_pk(value: Any) -> str:
    """DRF's message for a primary key no row has."""
    return f'Invalid pk "{value}" - object does not exist.'
