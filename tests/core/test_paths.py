"""core.paths: the one rule for turning a caller's value into URL path segments."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aioplatform.core.paths import segment, segments


@pytest.mark.parametrize("value", ["", ".", "..", "%2e", "%2E%2e", ".%2e"])
def test_dot_and_empty_segments_are_refused_naming_the_argument(value: str) -> None:
    with pytest.raises(ValueError, match="job_id"):
        segment("job_id", value)


@pytest.mark.parametrize("value", [None, True, False, 1.5, b"abc", ["a"]])
def test_non_str_int_values_are_a_type_error(value: object) -> None:
    with pytest.raises(TypeError, match="uuid"):
        segment("uuid", value)


def test_structure_characters_are_encoded() -> None:
    assert segment("x", "a/b?c#d%e\\f g") == "a%2Fb%3Fc%23d%25e%5Cf%20g"
    assert segment("x", 12) == "12"
    assert segment("x", "é") == "%C3%A9"


def test_paths_keep_slashes_between_encoded_segments() -> None:
    assert segments("path", "/home//alice/a b.txt/") == "home/alice/a%20b.txt"
    assert segments("path", "/", allow_root=True) == ""
    with pytest.raises(ValueError, match="path"):
        segments("path", "/")
    with pytest.raises(ValueError, match="path"):
        segments("path", "home/../etc")
    with pytest.raises(TypeError, match="path"):
        segments("path", 3)


@given(st.text())
def test_any_text_is_refused_or_one_segment_that_decodes_back(text: str) -> None:
    try:
        encoded = segment("name", text)
    except ValueError:
        assert unquote(text) in ("", ".", "..") or text in ("", ".", "..")
        return
    assert "/" not in encoded and "?" not in encoded and "#" not in encoded
    assert unquote(encoded) == text
    assert unquote(encoded) not in (".", "..")
