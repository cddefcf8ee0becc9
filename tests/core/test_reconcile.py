"""core.reconcile: the shared skeleton of every batch that looks up its lost answers."""

from __future__ import annotations

import email.utils
import time

import pytest

from aioplatform import ConnectError
from aioplatform.core.errors import TransportError
from aioplatform.core.reconcile import date_header_skew, gather_reconciled


def test_the_date_header_gives_the_server_clock_minus_ours_or_none() -> None:
    ahead = email.utils.formatdate(time.time() + 120, usegmt=True)
    skew = date_header_skew({"Date": ahead})
    assert skew is not None and 118 <= skew <= 121
    assert date_header_skew({}) is None
    assert date_header_skew({"Date": "not a date"}) is None


async def test_only_lost_answers_are_looked_up_each_found_record_claimed_once() -> None:
    made: list[str] = []  # what the "server" holds, in order

    async def send(body: str) -> str:
        made.append(body)
        if body.startswith("lost"):
            raise TransportError("dropped after sending", sent=True)
        if body.startswith("refused"):
            made.pop()
            raise ConnectError("refused")
        return body

    looked_up: list[tuple[int, frozenset[str]]] = []

    async def find_lost(index: int, sent_at: float, error: BaseException, claimed: set[str]) -> str | None:
        assert abs(sent_at - time.time()) < 60
        looked_up.append((index, frozenset(claimed)))
        return next((m for m in made if m.startswith("lost") and m not in claimed), None)

    heard: list[tuple[int, object]] = []
    inputs = ["A", "B", "C", "D"]
    result = await gather_reconciled(
        send, inputs, ["ok-1", "lost-2", "refused-3", "lost-4"], find_lost=find_lost,
        identity=lambda record: record, claimed=["before"],
        on_outcome=lambda i, item, outcome: heard.append((i, item)),
    )  # fmt: skip
    assert result.items == inputs
    assert result.outcomes[:2] == ["ok-1", "lost-2"] and result[3] == "lost-4"
    assert isinstance(result[2], ConnectError) and [e.index for e in result.errors] == [2]
    # the refused one (never sent) is not looked up; the second lookup sees the first's find
    assert looked_up == [
        (1, frozenset({"before", "ok-1"})),
        (3, frozenset({"before", "ok-1", "lost-2"})),
    ]
    # a lost answer is heard only once reconciled, after every other outcome
    assert sorted(heard[:2]) == [(0, "A"), (2, "C")] and heard[2:] == [(1, "B"), (3, "D")]


async def test_inputs_and_prepared_must_pair_up() -> None:
    async def send(body: str) -> str:
        return body

    async def find_lost(index: int, sent_at: float, error: BaseException, claimed: set[str]) -> None:
        return None

    with pytest.raises(ValueError, match="same length"):
        await gather_reconciled(send, ["a"], [], find_lost=find_lost, identity=str)
