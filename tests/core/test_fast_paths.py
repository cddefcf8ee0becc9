"""The hot-path shortcuts answer exactly what the general code answers (issue 16).

Each shortcut (a segment that needs no encoding, a canonical uuid, an ISO timestamp
``datetime.fromisoformat`` reads directly, an optional scalar field) is checked against
the long way for the inputs it takes and for the ones it must leave to the long way.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from urllib.parse import quote

import attrs
import cattrs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from aioplatform.core.paths import segment
from aioplatform.core.serde import make_converter, parse_datetime
from aioplatform.core.session import Response
from aioplatform.saltant.task_instances import _uuid


@pytest.mark.parametrize(
    "value",
    [
        "abc",
        "job-123-007",
        "a.b",
        "x~y_z",
        "8e3b1c9a-1f0e-4b7a-9a34-0c2d4e6f8a10",
        "a b",
        "a/b",
        "ü",
        "%41",
        "a?b",
    ],
)
def test_a_segment_is_what_quote_makes_of_it(value: str) -> None:
    assert segment("id", value) == quote(value, safe="")


@pytest.mark.parametrize("value", ["", ".", "..", "%2e%2E"])
def test_dot_segments_are_still_refused(value: str) -> None:
    with pytest.raises(ValueError, match="id"):
        segment("id", value)


def test_a_canonical_uuid_passes_as_it_is_and_others_are_canonicalised() -> None:
    canonical = "8e3b1c9a-1f0e-4b7a-9a34-0c2d4e6f8a10"
    assert _uuid(canonical) == canonical
    assert _uuid(canonical.upper()) == canonical
    assert _uuid("{" + canonical + "}") == canonical
    assert _uuid(canonical.replace("-", "")) == canonical
    with pytest.raises(ValueError, match="uuid"):
        _uuid(canonical[:-1] + "g")
    with pytest.raises(TypeError, match="uuid"):
        _uuid(5)


def slow_parse(text: str) -> dt.datetime:
    """The long way, as parse_datetime took it before the fast path."""
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-02T03:04:05Z", "2026-01-02T03:04:05.123456Z", "2026-01-02T03:04:05.123Z",
        "2026-01-02T03:04:05+02:00", "2026-01-02T03:04:05.5-05:30", "2026-01-02T03:04:05",
        "2026-01-02 03:04:05+00:00", " 2026-01-02T03:04:05Z ", "2026-01-02T03:04:05z",
    ],
)  # fmt: skip
def test_parse_datetime_agrees_with_the_long_way(text: str) -> None:
    parsed = parse_datetime(text)
    assert parsed == slow_parse(text) and parsed is not None
    assert parsed.utcoffset() == slow_parse(text).utcoffset()


def test_parse_datetime_still_refuses_what_is_not_a_timestamp() -> None:
    with pytest.raises(ValueError):
        parse_datetime("yesterday")
    with pytest.raises(ValueError):
        parse_datetime(5)


@attrs.define
class Row:
    name: str | None = None
    count: int | None = None
    at: dt.datetime | None = None
    share: float | None = None


def test_optional_scalars_structure_as_cattrs_does() -> None:
    ours, plain = make_converter(), cattrs.Converter(forbid_extra_keys=False)
    plain.register_structure_hook(dt.datetime, lambda v, _: parse_datetime(v))
    for data in (
        {},
        {"name": None, "count": None, "at": None, "share": None},
        {"name": "a", "count": "3", "at": "2026-01-02T03:04:05Z", "share": 1},
        {"name": 7, "count": 2.0, "share": "0.5"},
    ):
        assert ours.structure(data, Row) == plain.structure(data, Row)


def test_a_bad_optional_value_is_still_an_error_naming_the_field() -> None:
    with pytest.raises(cattrs.ClassValidationError) as caught:
        make_converter().structure({"count": "many"}, Row)
    notes = [note for exc in caught.value.exceptions for note in getattr(exc, "__notes__", [])]
    assert any("count" in note for note in notes)


def _json_outcome(read: Callable[[], object]) -> object:
    try:
        return ("value", read())
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
        return ("error", type(exc).__name__)


def _response(body: bytes) -> Response:
    return Response(
        method="GET", url=URL("http://h/"), status=200, reason="OK",
        headers=CIMultiDictProxy(CIMultiDict()), body=body,
    )  # fmt: skip


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    value=_JSON,
    encoding=st.sampled_from(
        ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le"]
    ),
    ascii=st.booleans(),
)
def test_response_json_reads_every_encoding_as_json_loads_does(
    value: object, encoding: str, ascii: bool
) -> None:
    # The default install skips json's encoding sniffing for a UTF-8 object or list.
    body = json.dumps(value, ensure_ascii=ascii).encode(encoding, "surrogatepass")
    assert _json_outcome(lambda: _response(body).json()) == _json_outcome(lambda: json.loads(body))


@settings(max_examples=300, deadline=None)
@given(body=st.binary(min_size=1, max_size=24).map(lambda b: b"{[\"\x00\xed"[len(b) % 5 :][:1] + b))
@example(body=b'{"a": "\xed\xa0\x80"}')  # a lone surrogate, which json decodes ("surrogatepass")
@example(body=b"[\xff]")
def test_response_json_fails_on_bytes_as_json_loads_does(body: bytes) -> None:
    assert _json_outcome(lambda: _response(body).json()) == _json_outcome(lambda: json.loads(body))
