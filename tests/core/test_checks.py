"""core.checks: the argument checks every service shares."""

from __future__ import annotations

import pytest

from aioplatform.core.checks import check_choice


def test_a_choice_is_exact_unless_any_case_which_answers_it_upper_cased() -> None:
    assert check_choice("action", "accept", ("accept", "reject")) == "accept"
    with pytest.raises(ValueError, match="action must be one of accept, reject, got 'ACCEPT'"):
        check_choice("action", "ACCEPT", ("accept", "reject"))
    assert check_choice("role", "publisher", ("USER", "PUBLISHER"), any_case=True) == "PUBLISHER"
    with pytest.raises(ValueError, match="role must be one of USER, PUBLISHER, got 'owner'"):
        check_choice("role", "owner", ("USER", "PUBLISHER"), any_case=True)
    with pytest.raises(TypeError, match="role must be a string"):
        check_choice("role", 3, ("USER",), any_case=True)
