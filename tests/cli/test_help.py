"""Every command's ``--help`` renders: it builds the command's parameters from the annotations,
so a typer annotation error shows up here (it once broke ``serve``)."""

from __future__ import annotations

from typing import Any

import pytest
import typer

from aioplatform.cli import _build_app

from .conftest import invoke, run


def command_paths() -> list[list[str]]:
    """Every command and group of the app, as argument lists (``[]`` is the app itself)."""
    found: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        found.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(_build_app()), [])
    return found


PATHS = command_paths()


def test_the_app_has_the_documented_commands() -> None:
    assert {" ".join(p) for p in PATHS} >= {
        "",
        "serve",
        "demo",
        "saltant",
        "saltant clone-many",
        "saltant terminate-many",
        "saltant wait",
        "astakos",
        "astakos resolve",
    }


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) or "aioplatform" for p in PATHS])
def test_help_renders(path: list[str]) -> None:
    out = invoke([*path, "--help"])
    assert out.code == 0, out
    assert "Usage:" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr
    command: Any = typer.main.get_command(_build_app())
    for name in path:
        command = command.commands[name]
    for param in command.params:  # every option of the command is described in its help
        if param.param_type_name == "option" and not param.hidden:
            assert param.opts[-1] in out.stdout, f"{param.opts} missing from {' '.join(path)} --help"


@pytest.mark.parametrize("path", [[], ["saltant"], ["astakos"], ["saltant", "wait"]])
def test_help_renders_in_a_real_process(path: list[str]) -> None:
    out = run([*path, "--help"])
    assert out.code == 0, out
    assert "Usage:" in out.stdout


def test_without_arguments_the_app_and_its_groups_show_their_help() -> None:
    for path in ([], ["saltant"], ["astakos"]):
        out = invoke(path)
        assert "Usage:" in out.stdout + out.stderr
        assert "Commands" in out.stdout + out.stderr
