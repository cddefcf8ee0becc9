"""Unknown listing filters are errors: each saltant listing knows its filterset (fields and
lookups); ``allow_unknown=True`` sends one anyway."""

from __future__ import annotations

import pytest

from aioplatform.saltant import SaltantClient
from aioplatform.saltant.resources import LOOKUPS, filter_names

from .conftest import Backend, Setup


def managers(client: SaltantClient) -> list[object]:
    return [
        client.container_task_instances,
        client.executable_task_instances,
        client.container_task_types,
        client.executable_task_types,
        client.task_queues,
        client.task_whitelists,
        client.users,
    ]


async def test_an_unknown_filter_is_a_value_error_naming_the_known_ones_before_any_request(
    backend: Backend, client: SaltantClient
) -> None:
    before = backend.requests
    with pytest.raises(ValueError, match="'colour'") as info:
        client.container_task_instances.list({"colour": "blue"})
    assert "state__in" in str(info.value) and "allow_unknown=True" in str(info.value)
    for bad in ("user__in", "name__exact", "active__contains", "task_queue__startswith", "state__gte"):
        manager = client.task_queues if bad.startswith("active") else client.container_task_instances
        with pytest.raises(ValueError, match=bad):
            manager.list({bad: "x"})
    with pytest.raises(ValueError, match="'email'"):
        client.task_queues.list({"email": "a@b.c"})
    with pytest.raises(TypeError, match="allow_unknown"):
        client.users.list({}, allow_unknown="yes")  # type: ignore[arg-type]
    assert backend.requests == before


async def test_every_documented_field_and_lookup_is_accepted(client: SaltantClient) -> None:
    for manager in managers(client):
        fields = type(manager).filter_fields  # type: ignore[attr-defined]
        assert fields, manager
        for name in filter_names(fields):
            manager.list({name: "1"})  # type: ignore[attr-defined]  # builds the pager: no ValueError
    assert filter_names({"state": "char"}) == {
        f"state__{lookup}" for lookup in LOOKUPS["char"] - {"exact"}
    } | {"state"}


async def test_known_filters_filter_and_allow_unknown_sends_what_the_server_ignores(
    client: SaltantClient, ready: Setup
) -> None:
    base = {"task_type_id": ready.task_type.id, "task_queue_id": ready.queue.id}
    made = await client.container_task_instances.create_many(
        [{**base, "name": f"colour-{i}", "arguments": {"who": "x"}} for i in range(3)]
    )
    assert made.ok
    mine = {"task_queue": ready.queue.id}
    named = [i.name async for i in client.container_task_instances.list({**mine, "name": "colour-1"})]
    assert named == ["colour-1"]
    everything = client.container_task_instances.list({**mine, "colour": "blue"}, allow_unknown=True)
    assert len(await everything.to_list()) == 3  # saltant ignores a filter it does not know
