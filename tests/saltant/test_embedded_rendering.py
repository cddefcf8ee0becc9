"""The embedded saltant service's fast renderers write exactly what the plain ones write."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from aioplatform.testing.saltant import service

json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80), st.floats(), st.text()
    ),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_the_body_encoder_writes_what_json_dumps_writes(value: Any) -> None:
    assert service._dumps(value) == json.dumps(value)


@given(st.floats(min_value=-62_135_596_800.0, max_value=253_402_300_799.0))
def test_timestamps_render_as_strftime_renders_them(ts: float) -> None:
    when = dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc)
    assert service._iso(ts) == when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_a_timestamp_on_a_whole_second_keeps_its_microseconds() -> None:
    assert service._iso(1_700_000_000.0) == "2023-11-14T22:13:20.000000Z"
    assert service._iso(None) is None


def test_new_uuids_are_random_version_4_in_canonical_form() -> None:
    made = [service._uuid4() for _ in range(2000)]
    assert len(set(made)) == len(made)
    for text in made:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)
    # every one of the 122 random bits takes both values
    ints = [uuid.UUID(text).int for text in made]
    random_bits = ~((0xF << 76) | (0x3 << 62)) & (2**128 - 1)
    assert all(any(n >> bit & 1 for n in ints) for bit in range(128) if random_bits >> bit & 1)
    assert all(not all(n >> bit & 1 for n in ints) for bit in range(128) if random_bits >> bit & 1)
