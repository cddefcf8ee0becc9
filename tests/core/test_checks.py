"""core.checks: the argument checks every service shares."""

from __future__ import annotations

import pytest

from aioplatform.core.checks import check_choice, check_id, check_ids


def test_a_choice_is_exact_unless_any_case_which_answers_it_upper_cased() -> None:
    assert check_choice("action", "accept", ("accept", "reject")) == "accept"
    with pytest.raises(ValueError, match="action must be one of accept, reject, got 'ACCEPT'"):
        check_choice("action", "ACCEPT", ("accept", "reject"))
    assert check_choice("role", "publisher", ("USER", "PUBLISHER"), any_case=True) == "PUBLISHER"
    with pytest.raises(ValueError, match="role must be one of USER, PUBLISHER, got 'owner'"):
        check_choice("role", "owner", ("USER", "PUBLISHER"), any_case=True)
    with pytest.raises(TypeError, match="role must be a string"):
        check_choice("role", 3, ("USER",), any_case=True)


def test_ids_are_an_iterable_of_path_segment_strings_named_by_index() -> None:
    assert check_ids("job_ids", iter(["1-007", "a b"])) == ["1-007", "a b"]
    with pytest.raises(TypeError, match="job_ids must be an iterable of job ids, got str"):
        check_ids("job_ids", "1-007", what="job ids")
    with pytest.raises(ValueError, match=r"execution_ids\[1\] must name one resource"):
        check_ids("execution_ids", ["e1", ".."])
    with pytest.raises(TypeError, match=r"execution_ids\[0\] must be a string, got int"):
        check_ids("execution_ids", [7])


def test_an_id_is_a_path_segment_string() -> None:
    assert check_id("username", "bob") == "bob"
    with pytest.raises(TypeError, match="username must be a string, got int"):
        check_id("username", 7)
    with pytest.raises(TypeError, match="uuid must be a uuid string, got int"):
        check_id("uuid", 7, what="a uuid string")
    with pytest.raises(ValueError, match="username must name one resource"):
        check_id("username", "%2e%2e")
