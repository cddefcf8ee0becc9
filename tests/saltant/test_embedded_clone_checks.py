"""The embedded clone's checks always see the queue, whitelist and task type as stored now.

The clone reads queues, whitelists and task types from a cache that every write to those
tables empties (through the API, through a test's own SQL on the store, or by another
process committing to the same database file); a refused clone leaves the store as it
was and does not move the seeded sequence of simulated outcomes.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp

from aioplatform.testing import LocalPlatform


def _task_type(required: list[str]) -> dict[str, Any]:
    return {
        "name": "hello", "command_to_run": "echo", "container_image": "busybox", "container_type": "docker",
        "required_arguments": required, "required_arguments_default_values": {"times": 1},
    }  # fmt: skip


class Api:
    """Raw JSON calls to the platform's saltant service as its admin."""

    def __init__(self, session: aiohttp.ClientSession, platform: LocalPlatform):
        self.session = session
        self.base = platform.saltant_url
        self.headers = {"Authorization": f"Token {platform.saltant_token}"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session.request(method, self.base + path, json=body, headers=self.headers) as r:
            text = await r.text()
            return r.status, (json.loads(text) if text else text)

    async def made(self, path: str, body: Any) -> dict[str, Any]:
        status, answer = await self.call("POST", path, body)
        assert status == 201, answer
        return dict(answer)

    async def setup(self) -> tuple[int, int, int, str]:
        """A task type (``who`` required, ``times`` defaulting to 1), a whitelist of it, a queue, an
        instance; returns their ids and the instance's uuid."""
        ttype = await self.made("containertasktypes/", _task_type(["who", "times"]))
        whitelist = await self.made(
            "taskwhitelists/", {"name": "wl", "whitelisted_container_task_types": [ttype["id"]]}
        )
        queue = await self.made("taskqueues/", {"name": "q", "whitelists": [whitelist["id"]]})
        instance = await self.made(
            "containertaskinstances/",
            {"task_type": ttype["id"], "task_queue": queue["id"], "arguments": {"who": "x"}},
        )
        return ttype["id"], whitelist["id"], queue["id"], instance["uuid"]

    async def clone(self, uuid: str) -> int:
        status, _ = await self.call("POST", f"containertaskinstances/{uuid}/clone/")
        return status


async def _refused(platform: LocalPlatform, api: Api, uuid: str) -> None:
    """The clone is refused as saltant refuses it (an empty 405) and changes nothing."""
    before = await platform.store.dump()
    assert await api.clone(uuid) == 405
    assert await platform.store.dump() == before


async def test_clone_checks_follow_every_change_made_through_the_api() -> None:
    async with LocalPlatform() as platform, aiohttp.ClientSession() as session:
        api = Api(session, platform)
        ttype, whitelist, queue, uuid = await api.setup()
        assert await api.clone(uuid) == 201  # the checks' rows are cached from here on

        assert (await api.call("PATCH", f"taskqueues/{queue}/", {"active": False}))[0] == 200
        await _refused(platform, api, uuid)
        assert (await api.call("PATCH", f"taskqueues/{queue}/", {"active": True}))[0] == 200
        assert await api.clone(uuid) == 201

        emptied: dict[str, list[int]] = {"whitelisted_container_task_types": []}
        assert (await api.call("PATCH", f"taskwhitelists/{whitelist}/", emptied))[0] == 200
        await _refused(platform, api, uuid)
        restored = {"whitelisted_container_task_types": [ttype]}
        assert (await api.call("PATCH", f"taskwhitelists/{whitelist}/", restored))[0] == 200
        assert await api.clone(uuid) == 201

        # A new required argument without a default: the old instance's arguments lack it.
        changed = _task_type(["who", "times", "where"])
        assert (await api.call("PUT", f"containertasktypes/{ttype}/", changed))[0] == 200
        await _refused(platform, api, uuid)

        _, listed = await api.call("GET", "containertaskinstances/?page_size=100")
        assert listed["count"] == 4  # the instance and the three clones accepted


async def test_clone_checks_follow_a_tests_own_sql_on_the_store() -> None:
    async with LocalPlatform() as platform, aiohttp.ClientSession() as session:
        api = Api(session, platform)
        _, _, queue, uuid = await api.setup()
        assert await api.clone(uuid) == 201

        await platform.store.run(
            lambda c: c.execute("UPDATE saltant_taskqueues SET active = 0 WHERE id = ?", (queue,))
        )
        await _refused(platform, api, uuid)
        await platform.store.run(
            lambda c: c.execute("UPDATE saltant_taskqueues SET active = 1 WHERE id = ?", (queue,))
        )
        assert await api.clone(uuid) == 201
        await platform.store.run(lambda c: c.execute("DELETE FROM saltant_taskqueues WHERE id = ?", (queue,)))
        await _refused(platform, api, uuid)


async def test_clone_checks_follow_another_process_writing_the_database_file(tmp_path: Path) -> None:
    db = tmp_path / "platform.db"
    async with LocalPlatform(db) as platform, aiohttp.ClientSession() as session:
        api = Api(session, platform)
        _, _, queue, uuid = await api.setup()
        assert await api.clone(uuid) == 201

        other = sqlite3.connect(db, timeout=30)
        try:
            with other:
                other.execute("UPDATE saltant_taskqueues SET active = 0 WHERE id = ?", (queue,))
            await _refused(platform, api, uuid)
            with other:
                other.execute("UPDATE saltant_taskqueues SET active = 1 WHERE id = ?", (queue,))
            assert await api.clone(uuid) == 201
        finally:
            other.close()


async def test_a_clone_stores_its_arguments_re_encoded_as_json() -> None:
    async with LocalPlatform() as platform, aiohttp.ClientSession() as session:
        api = Api(session, platform)
        _, _, _, uuid = await api.setup()
        table = "saltant_containertaskinstances"
        compact = '{"who":"x","times":1}'  # as another tool might have written it
        await platform.store.run(
            lambda c: c.execute(f"UPDATE {table} SET arguments = ? WHERE uuid = ?", (compact, uuid))
        )
        status, body = await api.call("POST", f"containertaskinstances/{uuid}/clone/")
        assert status == 201 and body["arguments"] == {"who": "x", "times": 1}
        stored = await platform.store.run(
            lambda c: c.execute(f"SELECT arguments FROM {table} WHERE uuid = ?", (body["uuid"],)).fetchone()
        )
        assert stored[0] == '{"who": "x", "times": 1}'


async def _outcomes(refuse_a_clone: bool) -> list[str]:
    """The simulated outcomes of five instances created after one more, on a seeded platform."""
    async with LocalPlatform(seed=11) as platform, aiohttp.ClientSession() as session:
        platform.saltant.failure_rate = 0.5
        api = Api(session, platform)
        ttype, _, queue, uuid = await api.setup()
        if refuse_a_clone:
            assert (await api.call("PATCH", f"taskqueues/{queue}/", {"active": False}))[0] == 200
            await _refused(platform, api, uuid)
            assert (await api.call("PATCH", f"taskqueues/{queue}/", {"active": True}))[0] == 200
            assert await api.clone("00000000-0000-4000-8000-000000000000") == 404
        for i in range(5):
            await api.made(
                "containertaskinstances/",
                {"task_type": ttype, "task_queue": queue, "arguments": {"who": str(i)}},
            )
        rows = await platform.store.run(
            lambda c: c.execute("SELECT outcome FROM saltant_containertaskinstances ORDER BY seq").fetchall()
        )
        return [row[0] for row in rows]


async def test_refused_clones_leave_the_seeded_outcomes_alone() -> None:
    outcomes = await _outcomes(refuse_a_clone=False)
    assert set(outcomes) == {"failed", "successful"}  # the seed draws both: the comparison means something
    assert await _outcomes(refuse_a_clone=True) == outcomes
