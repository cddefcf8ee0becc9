"""The shared cattrs hooks: datetimes with any offset, explicit renames, unknown keys ignored."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest

from aioplatform.core.serde import make_converter, parse_datetime, rename


@attrs.frozen
class FileHandle:
    id: str
    created_at: dt.datetime
    size: int | None = None


@pytest.mark.parametrize(
    ("text", "offset_hours"),
    [
        ("2021-03-01T12:00:00.123456+00:00", 0),
        ("2021-03-01T12:00:00Z", 0),
        ("2018-08-24T13:44:12.000-05:00", -5),
        ("2019-01-02T03:04:05.678901-08:00", -8),
    ],
)
def test_datetimes_parse_with_any_offset(text: str, offset_hours: int) -> None:
    parsed = parse_datetime(text)
    assert parsed is not None
    assert parsed.utcoffset() == dt.timedelta(hours=offset_hours)


def test_naive_datetimes_are_taken_as_utc_and_none_stays_none() -> None:
    parsed = parse_datetime("2021-03-01T12:00:00")
    assert parsed is not None and parsed.tzinfo is dt.timezone.utc
    assert parse_datetime(None) is None
    with pytest.raises(ValueError):
        parse_datetime(12)


def test_renamed_fields_map_both_ways_and_unknown_keys_are_ignored() -> None:
    converter = make_converter()
    rename(converter, FileHandle, created_at="createdAt")
    wire = {"id": "f1", "createdAt": "2021-03-01T12:00:00Z", "size": 3, "fromANewerServer": True}
    handle = converter.structure(wire, FileHandle)
    assert handle == FileHandle("f1", dt.datetime(2021, 3, 1, 12, tzinfo=dt.timezone.utc), 3)
    assert converter.unstructure(handle)["createdAt"] == "2021-03-01T12:00:00+00:00"
