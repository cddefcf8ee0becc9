"""A value that fails URL validation is never echoed: a token passed where the URL goes
(arguments swapped) shows only as its length and at most its first 4 characters."""

from __future__ import annotations

import pytest

from aioplatform import Session
from aioplatform.astakos import AstakosClient
from aioplatform.core.auth import redact_value
from aioplatform.core.client import check_http_url
from aioplatform.flowserv import FlowservClient
from aioplatform.saltant import SaltantClient
from tests.cli.conftest import run

TOKEN = "6db2fceae34390b8dd5a62f1e79e2da74b3d0c4f"
URL = "http://127.0.0.1:9/saltant/api/"
SHOWN = "<40 characters, starting '6db2'>"


def test_a_redacted_value_shows_its_length_and_at_most_four_characters() -> None:
    assert redact_value(TOKEN) == SHOWN
    assert redact_value("abcdefgh") == "<8 characters, starting 'ab'>"  # never more than a quarter
    assert redact_value("abc") == "<3 characters>"
    assert redact_value("") == "<0 characters>"
    assert redact_value(42) == "<a int>"


@pytest.mark.parametrize("value", [TOKEN, f"ftp://user:{TOKEN}@host/", "http://", "http:///x", "https//x"])
def test_check_http_url_never_echoes_the_value(value: str) -> None:
    with pytest.raises(ValueError, match="base_url must be an absolute http") as caught:
        check_http_url("base_url", value)
    assert TOKEN not in str(caught.value) and value not in str(caught.value)


def test_saltant_client_with_swapped_arguments_does_not_print_the_token() -> None:
    with pytest.raises(ValueError, match="base_url") as caught:
        SaltantClient(TOKEN, URL)
    assert TOKEN not in str(caught.value)
    assert SHOWN in str(caught.value)


def test_astakos_client_with_swapped_arguments_does_not_print_the_token() -> None:
    with pytest.raises(ValueError, match="auth_url") as caught:
        AstakosClient("http://127.0.0.1:9/identity/v2.0", TOKEN)
    assert TOKEN not in str(caught.value)
    assert SHOWN in str(caught.value)


def test_flowserv_client_with_a_token_for_a_url_does_not_print_it() -> None:
    with pytest.raises(ValueError, match="base_url") as caught:
        FlowservClient(TOKEN, token=URL)
    assert TOKEN not in str(caught.value)


async def test_session_request_with_a_token_for_a_url_does_not_print_it() -> None:
    async with Session() as session:
        with pytest.raises(ValueError, match="url") as caught:
            await session.request("GET", TOKEN)
        assert TOKEN not in str(caught.value) and SHOWN in str(caught.value)
        assert session.stats.requests == 0


def test_cli_with_swapped_saltant_variables_does_not_print_the_token() -> None:
    env = {"SALTANT_API_URL": TOKEN, "SALTANT_AUTH_TOKEN": URL}
    out = run(["saltant", "terminate-many", "00000000-0000-4000-8000-000000000000"], env=env)
    assert out.code == 2
    assert "absolute http(s) URL" in out.text
    assert TOKEN not in out.stdout + out.stderr
    assert TOKEN[:4] in out.text  # the redacted form: length and first 4 characters


def test_cli_with_swapped_astakos_variables_does_not_print_the_token() -> None:
    env = {"ASTAKOS_AUTH_URL": TOKEN, "ASTAKOS_TOKEN": "http://127.0.0.1:9/identity/v2.0"}
    out = run(["astakos", "resolve", "--accept", "1"], env=env)
    assert out.code == 2
    assert "absolute http(s) URL" in out.text
    assert TOKEN not in out.stdout + out.stderr
