"""The optional ``speedups`` extra (orjson) never changes what a body parses to.

Run with and without orjson installed: either way ``Response.json()`` must equal
``json.loads`` for bodies orjson reads differently or refuses (NaN, integers beyond 64
bits, UTF-16, lone surrogates, duplicate keys).
"""

from __future__ import annotations

import json
import math

import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from aioplatform.core.session import Response


def response(body: bytes) -> Response:
    return Response(
        method="GET", url=URL("http://127.0.0.1/x"), status=200, reason="OK",
        headers=CIMultiDictProxy(CIMultiDict()), body=body,
    )  # fmt: skip


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1, "b": [true, null, 2.5, "\\u00e9"]}',
        b'{"big": 123456789012345678901234567890}',
        b'{"below_i64": -9999999999999999999, "u64": 18446744073709551615}',
        b'{"a": 1, "a": 2}',
        '{"text": "\u00e9"}'.encode("utf-16"),
        b'{"lone": "\\ud800"}',
        b'{"x": 1e400}',
        b"  [1, 2]\n",
    ],
)
def test_a_body_parses_as_json_loads_parses_it(body: bytes) -> None:
    assert response(body).json() == json.loads(body)


def test_nan_is_read_as_json_reads_it() -> None:
    parsed = response(b'{"x": NaN}').json()
    assert math.isnan(parsed["x"])


def test_a_body_that_is_not_json_is_still_a_value_error() -> None:
    with pytest.raises(ValueError):
        response(b"<html>").json()
    assert response(b"").json() is None
