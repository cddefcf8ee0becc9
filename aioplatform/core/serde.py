"""cattrs converters for wire data: one per service, built here with the shared hooks.

* datetimes parse ISO-8601 with any UTC offset, ``Z`` included, on every Python;
* wire names that differ from attribute names (camelCase) are mapped explicitly with
  :func:`rename`, never guessed;
* unknown keys from a newer server are ignored rather than failing the parse;
* :func:`parse` is how a service reads a response body into its models: any body
  that does not fit (not JSON, a field missing or of the wrong type) becomes one
  :class:`~aioplatform.core.errors.UnexpectedResponse` naming the field and the URL,
  never a raw cattrs, ``KeyError`` or ``TypeError`` exception.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .defaults import REDACTED
from .errors import UnexpectedResponse

if TYPE_CHECKING:
    from .session import Response

__all__ = ["make_converter", "parse", "parse_datetime", "rename", "structure"]

T = TypeVar("T")


def parse_datetime(value: Any) -> dt.datetime | None:
    """An aware datetime from an ISO-8601 string (``Z`` or any offset); None stays None."""
    if value is None or isinstance(value, dt.datetime):
        return value
    if type(value) is str:
        # Python 3.11+ reads the wire's usual forms (``Z`` included) directly; whatever it
        # does not take goes the long way below, which gives the same datetime for these.
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO-8601 string, got {value!r}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def make_converter() -> cattrs.Converter:
    """A fresh converter with aioplatform's datetime hooks (one per service package)."""
    converter = cattrs.Converter(forbid_extra_keys=False)
    converter.register_structure_hook(dt.datetime, lambda v, _: parse_datetime(v))
    converter.register_unstructure_hook(dt.datetime, lambda v: v.isoformat())
    converter.register_structure_hook_factory(_optional_scalar, lambda t: _structure_optional(converter, t))
    return converter


_SCALARS = (str, int, float, dt.datetime)


def _optional_scalar(t: Any) -> bool:
    """``X | None`` (or ``Optional[X]``) of a plain scalar: the hot optional fields of every model."""
    if typing.get_origin(t) not in (typing.Union, types.UnionType):
        return False
    args = typing.get_args(t)
    return len(args) == 2 and type(None) in args and any(a in _SCALARS for a in args)


def _structure_optional(converter: cattrs.Converter, t: Any) -> Callable[[Any, Any], Any]:
    """What cattrs does for an optional field (None stays None, else the inner type's hook),
    with the inner hook looked up once instead of on every value."""
    inner = next(a for a in typing.get_args(t) if a is not type(None))
    hook = converter.get_structure_hook(inner)

    def structure(value: Any, _: Any) -> Any:
        return None if value is None else hook(value, inner)

    return structure


def rename(converter: cattrs.Converter, cls: type[T], **wire_names: str) -> None:
    """Map attribute names of ``cls`` to wire names in both directions.

    >>> rename(converter, FileHandle, created_at="createdAt")
    """
    overrides = {attr: override(rename=wire) for attr, wire in wire_names.items()}
    converter.register_structure_hook(
        cls, make_dict_structure_fn(cls, converter, **overrides)  # type: ignore[arg-type]
    )
    converter.register_unstructure_hook(
        cls, make_dict_unstructure_fn(cls, converter, **overrides)  # type: ignore[arg-type]
    )


# What reading a body of the wrong shape raises (``None["x"]``, ``int("abc")``, ``[].items()``).
_SHAPE_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError)


def parse(
    response: Response, read: Callable[[Any], T], *, key: str | None = None, secret: bool = False
) -> T:
    """``read(body)`` for the response's JSON body (``body[key]`` with ``key``: then a
    missing or bad value is placed exactly, ``$.key``).

    Whatever goes wrong while reading is raised as
    :class:`~aioplatform.core.errors.UnexpectedResponse` with ``.field`` (e.g.
    ``"$.results[0].uuid"``), ``.problem`` and the response's status, method and URL;
    the original error is its ``__cause__``. With ``secret=True`` (a body that carries
    credentials, such as a token endpoint's) the error keeps no body and no values.

    >>> users = parse(response, lambda body: converter.structure(body, list[User]), key="users")
    """
    try:
        data = response.json()
    except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _unexpected(response, secret, "$", "the body is not JSON") from exc
    where = "$"
    if key is not None:
        where = f"$.{key}"
        if not isinstance(data, dict):
            raise _unexpected(response, secret, "$", f"expected a JSON object, got {_json_type(data)}")
        if key not in data:
            raise _unexpected(response, secret, where, "required field missing")
        data = data[key]
    try:
        return read(data)
    except cattrs.BaseValidationError as exc:
        field, problem = _first_problem(exc, where)
        raise _unexpected(response, secret, field, problem) from exc
    except KeyError as exc:  # somewhere below ``where``: the reader does not say where (use ``key=``)
        missing = exc.args[0] if exc.args else "?"
        raise _unexpected(response, secret, where, f"required field {missing!r} missing") from exc
    except _SHAPE_ERRORS as exc:
        raise _unexpected(response, secret, where, f"{type(exc).__name__}: {exc}") from exc


def structure(
    response: Response,
    converter: cattrs.Converter,
    cls: type[T],
    *,
    key: str | None = None,
    secret: bool = False,
) -> T:
    """:func:`parse` with ``converter`` structuring the body (or ``body[key]``) as ``cls``.

    >>> group = structure(response, converter, Group)
    """
    return parse(response, lambda body: converter.structure(body, cls), key=key, secret=secret)


def _first_problem(exc: cattrs.BaseValidationError, where: str) -> tuple[str, str]:
    """(field, problem) of the first failure cattrs reports: ("$.results[1].x", "required field missing")."""
    for line in cattrs.transform_error(exc, path=where):
        problem, sep, field = line.rpartition(" @ ")
        if sep:
            return field, problem
        return where, line
    return where, str(exc)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _unexpected(response: Response, secret: bool, field: str, problem: str) -> UnexpectedResponse:
    if secret:  # a problem such as "invalid literal for int(): '<the token>'" may quote a value
        keep = problem.startswith("required field") or problem == "the body is not JSON"  # names, no values
        problem = problem if keep else "wrong type"
    error = response.error(f"unexpected answer: {problem} @ {field}", cls=UnexpectedResponse)
    assert isinstance(error, UnexpectedResponse)
    error.field, error.problem = field, problem
    if secret:
        error.body = REDACTED
    return error
