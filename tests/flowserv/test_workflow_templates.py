"""Workflow templates with parameters: on the workflow, copied into its groups, typed on the client.

Both backends hold the same two templates: ``hello`` (one string parameter) and
``params`` (tests/interop/robflask.py's template with parameters of every supported
kind), installed on rob-flask by ``flowserv workflows create`` and on the embedded
service by ``FlowservService.install_template`` from the same folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aioplatform.flowserv import Parameter
from aioplatform.testing import LocalPlatform
from aioplatform.testing.flowserv.templates import parameter_declarations, read_template

from .conftest import Backend, unique

# What rob-flask 0.6.0 (flowserv-core 0.8.1) serves for the params template: index and
# isRequired filled in, ranges normalised, a file's target, optional keys only when set.
PARAMS_ON_THE_WIRE: list[dict[str, Any]] = [
    {"dtype": "file", "index": 0, "isRequired": True, "label": "Input file", "name": "names",
     "target": "data/names.txt"},
    {"defaultValue": 10, "dtype": "int", "help": "Seconds to wait", "index": 1, "isRequired": False,
     "label": "Sleep period", "name": "sleeptime", "range": "[0.0,100.0]"},
    {"dtype": "select", "index": 5, "isRequired": True, "name": "greeting",
     "values": [{"isDefault": True, "name": "Hi", "value": "hi"}, {"name": "Hello", "value": "hello"}]},
    {"defaultValue": False, "dtype": "bool", "index": 3, "isRequired": False, "name": "verbose"},
    {"defaultValue": 0.5, "dtype": "float", "index": 4, "isRequired": True, "label": "Ratio", "name": "ratio",
     "range": "(-inf,1.0]"},
]  # fmt: skip
HELLO_ON_THE_WIRE = [
    {"defaultValue": "Hello", "dtype": "string", "index": 0, "isRequired": False, "label": "Greeting",
     "name": "greeting"},
]  # fmt: skip


async def raw_get(backend: Backend, path: str, token: str | None = None) -> Any:
    headers = {"api_key": token} if token else {}
    async with aiohttp.ClientSession() as http, http.get(backend.url + path, headers=headers) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_a_workflow_declares_its_template_parameters(backend: Backend) -> None:
    assert (await raw_get(backend, f"workflows/{backend.params_workflow_id}"))[
        "parameters"
    ] == PARAMS_ON_THE_WIRE
    assert (await raw_get(backend, f"workflows/{backend.workflow_id}"))["parameters"] == HELLO_ON_THE_WIRE
    async with backend.client() as client:
        workflow = await client.workflows.get(backend.params_workflow_id)
    assert [p.name for p in workflow.parameters] == ["names", "sleeptime", "greeting", "verbose", "ratio"]
    names, sleeptime, greeting, verbose, ratio = workflow.parameters
    assert names == Parameter(
        name="names", dtype="file", index=0, is_required=True, label="Input file", target="data/names.txt"
    )
    assert (sleeptime.default_value, sleeptime.range, sleeptime.help) == (
        10,
        "[0.0,100.0]",
        "Seconds to wait",
    )
    assert greeting.values is not None and [v["value"] for v in greeting.values] == ["hi", "hello"]
    assert (greeting.index, greeting.is_required, greeting.display_name) == (5, True, "greeting")
    assert verbose.default_value is False and verbose.label is None
    assert (ratio.dtype, ratio.default_value, ratio.is_required, ratio.display_name) == (
        "float",
        0.5,
        True,
        "Ratio",
    )


async def test_groups_carry_their_workflow_parameters(backend: Backend) -> None:
    async with backend.logged_in() as client:
        workflow = await client.workflows.get(backend.params_workflow_id)
        group = await client.groups.create(backend.params_workflow_id, unique("team"))
        assert group.parameters == workflow.parameters and len(group.parameters) == 5
        assert (await client.groups.get(group.id)).parameters == workflow.parameters
        renamed = await client.groups.update(group.id, name=unique("renamed"))
        assert renamed.parameters == workflow.parameters
        hello = await client.groups.create(backend.workflow_id, unique("team"))
        assert [(p.name, p.default_value) for p in hello.parameters] == [("greeting", "Hello")]
        token = client._api_key.token
        assert token is not None
        assert (await raw_get(backend, f"groups/{group.id}", token))["parameters"] == PARAMS_ON_THE_WIRE


async def test_optional_workflow_keys_appear_only_when_set(backend: Backend) -> None:
    listing = {w["id"]: w for w in (await raw_get(backend, "workflows"))["workflows"]}
    params = listing[backend.params_workflow_id]
    assert params == {
        "id": backend.params_workflow_id, "name": "Parameters",
        "description": "A template with parameters of every kind",
        "instructions": "Pick a file and a greeting.",
    }  # fmt: skip
    assert "parameters" not in params  # a listing carries no parameters
    for entry in listing.values():  # an unset description or instructions is left out, never null
        assert None not in entry.values() and {"id", "name"} <= set(entry) <= {
            "id", "name", "description", "instructions",
        }  # fmt: skip
    anonymous = await raw_get(backend, f"workflows/{backend.params_workflow_id}")
    assert set(anonymous) == {"id", "name", "description", "instructions", "parameters"}
    user = await backend.new_user()
    async with backend.logged_in(user) as client:
        group = await client.groups.create(backend.params_workflow_id, unique("mine"))
        token = client._api_key.token
        assert token is not None
        seen = await raw_get(backend, f"workflows/{backend.params_workflow_id}", token)
        # a logged-in caller also sees their own groups of the workflow
        assert seen["groups"] == [
            {"id": group.id, "name": group.name, "workflow": backend.params_workflow_id}
        ]
        assert (await client.workflows.get(backend.params_workflow_id)).parameters
    anonymous_again = await raw_get(backend, f"workflows/{backend.params_workflow_id}", "not-a-key")
    assert "groups" not in anonymous_again  # an invalid key is no login, and no error here


# -- the embedded service's templates (no server needed for the checks) -----------------------


def test_declarations_are_completed_as_flowserv_does_it() -> None:
    from tests.interop.robflask import PARAMS_DECLARATIONS

    assert parameter_declarations(json.loads(json.dumps(PARAMS_DECLARATIONS))) == [
        {k: doc[k] for k in sorted(doc)} for doc in PARAMS_ON_THE_WIRE
    ]


@pytest.mark.parametrize(
    ("declarations", "error", "message"),
    [
        ("greeting", TypeError, "parameters must be a list"),
        ([{"name": "a", "dtype": "string"}, 3], TypeError, r"parameters\[1\] must be a mapping"),
        ([{"name": "a", "dtype": "text"}], ValueError, r"parameters\[0\]\.dtype must be one of"),
        ([{"name": "a", "dtype": "string", "range": "[0,1]"}], ValueError, r"unknown key\(s\) range"),
        ([{"name": "", "dtype": "string"}], ValueError, r"parameters\[0\]\.name"),
        (
            [{"name": "a", "dtype": "int"}, {"name": "a", "dtype": "int"}],
            ValueError,
            "duplicate parameter 'a'",
        ),
        ([{"name": "a", "dtype": "int", "range": "0..1"}], ValueError, "invalid interval"),
        ([{"name": "a", "dtype": "select"}], ValueError, r"parameters\[0\]\.values"),
        ([{"name": "a", "dtype": "bool", "isRequired": "yes"}], TypeError, "isRequired must be a bool"),
        ([{"name": "a", "dtype": "bool", "index": True}], TypeError, "index must be an int"),
    ],
)
def test_bad_declarations_are_refused_naming_the_declaration(
    declarations: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        parameter_declarations(declarations)


async def test_install_template_and_create_workflow_refuse_bad_input_before_storing(tmp_path: Path) -> None:
    async with LocalPlatform() as platform:
        service = platform.flowserv
        with pytest.raises(ValueError, match="does not exist"):
            await service.install_template(tmp_path / "missing", "w1")
        (tmp_path / "t").mkdir()
        (tmp_path / "t" / "flowserv.json").write_text(json.dumps({"specfile": "spec.json"}))
        (tmp_path / "t" / "spec.json").write_text(json.dumps({"parameters": []}))
        with pytest.raises(ValueError, match="missing name"):
            await service.install_template(tmp_path / "t", "w1")
        assert await service.install_template(tmp_path / "t", "w1", name="Named") == "w1"
        with pytest.raises(ValueError, match="exists already"):
            await service.create_workflow("w1", "Other")
        with pytest.raises(ValueError, match=r"parameters\[0\]\.dtype"):
            await service.create_workflow("w2", "Two", parameters=[{"name": "x", "dtype": "blob"}])
        with pytest.raises(ValueError, match="workflow_id"):
            await service.create_workflow("", "Empty")
        async with aiohttp.ClientSession() as http, http.get(platform.flowserv_url + "workflows") as response:
            ids = [w["id"] for w in (await response.json())["workflows"]]
        assert sorted(ids) == ["hello", "w1"]  # nothing half-made


def test_a_yaml_template_reads_as_flowserv_reads_it(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    (tmp_path / "flowserv.yaml").write_text("name: Yaml\ndescription: From YAML\ninstructions: README.md\n")
    (tmp_path / "README.md").write_text("  Read me.\n")
    (tmp_path / "benchmark.yaml").write_text(
        "workflow: {}\nparameters:\n  - name: n\n    dtype: int\n    defaultValue: 3\n"
    )
    template = read_template(tmp_path)
    assert (template.name, template.description, template.instructions) == ("Yaml", "From YAML", "Read me.")
    assert template.parameters == [
        {"dtype": "int", "name": "n", "index": 0, "isRequired": False, "defaultValue": 3}
    ]
