"""AgaveClient: Agave / Tapis v2 (agavepy's 120 operations) as coroutines on a pooled session.

>>> async with AgaveClient("https://api.tacc.utexas.edu", token=token, refresh_token=refresh,
...                        api_key=key, api_secret=secret) as agave:
...     job = await agave.jobs.submit({"name": "wc", "appId": "wc-1.00", "inputs": {...}})
...     async for summary in agave.jobs.list(search={"status.eq": "RUNNING"}):
...         print(summary.id)

Unlike agavepy, any base URL works: plain http, an explicit port, a path prefix
(``http://127.0.0.1:8080/agave``). Every JSON answer is Agave's envelope
``{"status", "message", "version", "result"}``: methods return the typed ``result``
(``None`` when absent); an error status raises the typed error of
:mod:`aioplatform.core.errors` with the envelope's ``message`` (or the gateway
fault's, or the page's text when the gateway answers HTML).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
    Sequence,
)
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from ..core.auth import Auth, redact
from ..core.batch import answer_lost
from ..core.client import BaseClient
from ..core.errors import APIError, NotFound, Unauthorized
from ..core.paging import AsyncPager
from ..core.retry import RetryPolicy
from ..core.session import Limits, Response, Session, SSLOption, StreamResponse, Timeouts
from .auth import AgaveTokens, TokenSet, is_gateway_fault
from .cache import ENV, cache_path, credentials_from_cache, credentials_from_env, write_tokens
from .errors import AuthenticationError
from .models.common import AgaveModel, structure

if TYPE_CHECKING:
    from .actors import Actors
    from .apps import Apps
    from .clients import Clients
    from .files import Files
    from .jobs import Jobs
    from .meta import Meta
    from .notifications import Notifications
    from .profiles import Profiles
    from .systems import Systems
    from .tokens import Tokens

__all__ = ["AgaveClient", "agave_error_message"]

M = TypeVar("M", bound=AgaveModel)

_NO_AUTH = Auth()
# The page size the client asks for: the Java services' fallback maximum (agave.md §8).
DEFAULT_PAGE_SIZE = 100


def agave_error_message(response: Response) -> str:
    """The readable message of an Agave error answer (envelope, gateway fault, OAuth, HTML)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        if isinstance(body.get("message"), str) and body["message"]:
            return str(body["message"])
        fault = body.get("fault")
        if isinstance(fault, dict):
            parts = [str(fault.get(k)) for k in ("message", "description") if fault.get(k)]
            return ": ".join(parts) or "gateway fault"
        if "error_description" in body or "error" in body:
            return str(body.get("error_description") or body.get("error"))
    text = response.text.strip()
    if text.startswith("<"):
        # An HTML or XML page from the gateway: its title or first text, not the markup.
        import re

        title = re.search(r"<(?:title|ams:message|h1)[^>]*>([^<]{1,200})<", text, re.I)
        text = title.group(1).strip() if title else re.sub(r"<[^>]+>", " ", text)
        text = " ".join(text.split())
    return text[:300] or f"HTTP {response.status} {response.reason}".strip()


class AgaveClient(BaseClient):
    """An async Agave client. Resources as attributes, as in agavepy (``client.jobs`` ...).

    Credentials: an access ``token``; to refresh it, ``refresh_token`` with the OAuth
    client's ``api_key``/``api_secret``; or ``username``/``password`` (with the key and
    secret) for the password grant; or none at all (an Abaco nonce holder: ``nonce=``
    calls work, others get the gateway's 401 as an ``AuthenticationError`` saying no
    credential was given). ``on_token_refresh(TokenSet)`` is called (and
    awaited if it is a coroutine function) after every grant. ``ssl`` is how TLS servers
    are verified: a CA bundle path (the embedded TLS site's ``platform.agave_ca_pem``), an
    ``ssl.SSLContext``, or ``False`` for no verification (tests only).
    """

    actors: Actors
    clients: Clients
    apps: Apps
    files: Files
    jobs: Jobs
    meta: Meta
    systems: Systems
    tokens: Tokens
    notifications: Notifications
    profiles: Profiles

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        refresh_token: str | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        username: str | None = None,
        password: str | None = None,
        expires_at: float | None = None,
        on_token_refresh: Callable[[TokenSet], Any] | None = None,
        session: Session | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        limits: Limits | None = None,
        ssl: SSLOption = None,
    ):
        tokens = AgaveTokens(
            token=token,
            refresh_token=refresh_token,
            expires_at=expires_at,
            api_key=api_key,
            api_secret=api_secret,
            username=username,
            password=password,
            on_refresh=on_token_refresh,
        )
        super().__init__(
            base_url, auth=tokens, session=session, retry=retry, timeouts=timeouts, limits=limits, ssl=ssl
        )
        self.credentials = tokens  # the token pair and OAuth client (AgaveTokens)
        tokens.bind(self._grant)
        self._prepare = tokens.ensure  # a token, renewed when about to expire, before each call
        self._rebind()

    @classmethod
    def from_env(cls, **options: Any) -> AgaveClient:
        """A client from the ``AGAVE_*`` variables agavepy and the Agave CLI use
        (``TAPIS_*`` as a fallback): ``AGAVE_BASE_URL`` (or ``AGAVE_TENANT_BASEURL``),
        ``AGAVE_TOKEN`` (or ``AGAVE_ACCESS_TOKEN``), ``AGAVE_REFRESH_TOKEN``,
        ``AGAVE_CLIENT_KEY``/``AGAVE_CLIENT_SECRET`` (or ``AGAVE_API_KEY``/``AGAVE_API_SECRET``),
        ``AGAVE_USERNAME``, ``AGAVE_PASSWORD``. ``options`` override them and pass the rest
        (``session=``, ``retry=``, ``on_token_refresh=`` ...)."""
        found: dict[str, Any] = credentials_from_env()
        found.update(options)
        if "base_url" not in found:
            raise ValueError(f"no Agave base URL: set {' or '.join(ENV['base_url'])}")
        if not any(found.get(k) for k in ("token", "refresh_token", "password")):
            raise ValueError(
                "no Agave credential in the environment: set AGAVE_TOKEN (with AGAVE_REFRESH_TOKEN, "
                "AGAVE_CLIENT_KEY and AGAVE_CLIENT_SECRET to refresh it) or AGAVE_USERNAME and AGAVE_PASSWORD"
            )
        base_url = found.pop("base_url")
        return cls(base_url, **found)

    @classmethod
    def from_cache(
        cls, path: str | os.PathLike[str] | None = None, *, persist: bool = False, **options: Any
    ) -> AgaveClient:
        """A client from the credential cache agavepy and the Tapis CLI write
        (``~/.agave/current``, or ``current`` in ``$AGAVE_CACHE_DIR``; ``path`` to name
        another file). The cached access token may have expired: the client refreshes it
        first (its expiry is ``created_at + expires_in``).

        Refreshed tokens are written back only when asked: ``persist=True`` rewrites the
        file (atomically, mode 0600, other keys kept); ``on_token_refresh=`` is called
        as well. ``options`` override what the file holds."""
        if not isinstance(persist, bool):
            raise TypeError("persist must be a bool")
        where = cache_path(path)
        found = credentials_from_cache(where)
        found.update(options)
        if "base_url" not in found:
            raise ValueError(f"the Agave credential cache {where} names no baseurl")
        if persist:
            callback = found.pop("on_token_refresh", None)

            async def write_back(tokens: TokenSet) -> None:
                import asyncio

                await asyncio.to_thread(write_tokens, where, tokens)
                if callback is not None:
                    outcome = callback(tokens)
                    if hasattr(outcome, "__await__"):
                        await outcome

            found["on_token_refresh"] = write_back
        base_url = found.pop("base_url")
        return cls(base_url, **found)

    def _rebind(self) -> None:
        """Resource modules attach themselves here (``self.jobs = Jobs(self)`` ...)."""
        from .resources import attach

        attach(self)

    # -- tokens -----------------------------------------------------------------------------

    async def _grant(self, form: dict[str, str]) -> TokenSet:
        key, secret = self.credentials.api_key, self.credentials.api_secret
        assert key is not None and secret is not None
        basic = base64.b64encode(f"{key}:{secret}".encode()).decode()
        # What the form carries must not come back in an error (a server may echo it).
        hidden = [secret, basic, *(form.get(k, "") for k in ("refresh_token", "password"))]
        try:
            # A password grant can be re-sent harmlessly; a refresh grant spends its token,
            # so it is only re-sent when it provably never reached the server.
            response = await BaseClient._request(
                self, "POST", "token", data=form, headers={"Authorization": f"Basic {basic}"},
                auth=_NO_AUTH, idempotent=form.get("grant_type") == "password",
            )  # fmt: skip
        except APIError as exc:
            refused = f"the token endpoint refused the {form.get('grant_type', '')} grant: {exc.message}"
            error = AuthenticationError(
                redact(refused, hidden),
                status=exc.status, method=exc.method, url=exc.url, body=redact(exc.body, hidden),
            )  # fmt: skip
            with contextlib.suppress(ValueError, AttributeError, TypeError):
                code = json.loads(exc.body).get("error")
                error.error = code if isinstance(code, str) else None
            raise error from None
        created = time.time()
        try:
            body = response.json()
            access = body["access_token"]
            expires_in = int(body["expires_in"]) if body.get("expires_in") is not None else None
        except (ValueError, KeyError, TypeError, AttributeError):
            raise response.error(
                "the token endpoint answered without an access_token", cls=AuthenticationError
            ) from None
        if not isinstance(access, str) or not access:
            raise response.error(
                "the token endpoint answered without an access_token", cls=AuthenticationError
            )
        refresh = body.get("refresh_token")
        return TokenSet(
            access_token=access,
            refresh_token=refresh if isinstance(refresh, str) and refresh else None,
            expires_at=created + expires_in if expires_in is not None else None,
            expires_in=expires_in,
            created_at=created,
        )

    def _basic_auth(self) -> Auth:
        """HTTP Basic ``username:password`` (the ``clients`` resource authenticates so)."""
        username, password = self.credentials.username, self.credentials.password
        if username is None or password is None:
            raise ValueError("this operation needs the client's username and password (HTTP Basic)")
        encoded = base64.b64encode(f"{username}:{password}".encode()).decode()
        return _BasicAuth(encoded, password)

    # -- requests ---------------------------------------------------------------------------

    def _error(self, response: Response) -> APIError:
        message = agave_error_message(response)
        if is_gateway_fault(response):
            return response.error(f"the gateway rejected the token: {message}", cls=AuthenticationError)
        return response.error(message)

    # The token is made ready by the base's _prepare hook (credentials.ensure); these only
    # say, when the client holds no credential at all, that none was given.

    async def _request(self, method: str, path: str, **kwargs: Any) -> Response:
        if kwargs.get("auth") is None and not self.credentials.has_credential:
            with _no_credential():
                return await super()._request(method, path, **kwargs)
        return await super()._request(method, path, **kwargs)

    def _stream(self, method: str, path: str, **kwargs: Any) -> AbstractAsyncContextManager[StreamResponse]:
        opened = super()._stream(method, path, **kwargs)

        @contextlib.asynccontextmanager
        async def streaming() -> AsyncIterator[StreamResponse]:
            with _no_credential() if not self.credentials.has_credential else contextlib.nullcontext():
                async with opened as response:
                    yield response

        return streaming()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; the envelope's ``result`` (``None`` when absent or empty)."""
        response = await self._request(method, path, **kwargs)
        if not response.body.strip():
            return None
        try:
            body = response.json()
        except ValueError:
            raise response.error("Agave answered a success with a body that is not JSON") from None
        if isinstance(body, dict) and "status" in body and "version" in body:
            return body.get("result")
        return body  # a naked answer

    async def _delete_once(self, path: str) -> None:
        """DELETE ``path`` so that a lost answer cannot turn into a false 404: sent once
        (re-sent only when it provably never reached the server); if its answer was lost,
        sent again with the usual retries, and a 404 then counts as deleted (the first
        removed it). A 404 on the first answer stays a ``NotFound``."""
        try:
            await self._call("DELETE", path, idempotent=False)
        except Exception as exc:
            if not answer_lost(exc):
                raise
            with contextlib.suppress(NotFound):  # gone: the lost first delete removed it
                await self._call("DELETE", path)

    async def _model(self, method: str, path: str, cls: type[M], *, row: bool = False, **kwargs: Any) -> M:
        """One request whose ``result`` is one ``cls`` (with ``row``, also a list of exactly
        one: a per-user read, which servers answer in either form)."""
        response = await self._request(method, path, **kwargs)
        return self._structure(response, cls, row=row)

    def _structure(self, response: Response, cls: type[M], *, row: bool = False) -> M:
        try:
            body = response.json()
            result = body.get("result") if isinstance(body, dict) and "version" in body else body
            if row and isinstance(result, list):
                if len(result) != 1:
                    raise ValueError(f"expected one row, got {len(result)}")
                result = result[0]
            return structure(result, cls)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise response.error(
                f"unexpected answer for {cls.__name__}: {type(exc).__name__}: {str(exc)[:200]}"
            ) from None

    @staticmethod
    def _structure_list(response: Response, cls: type[M], *, row: bool = False) -> list[M]:
        """A ``result`` that is a list of ``cls`` (null: none; with ``row``, one object is a
        list of one); any other shape is a response error naming the URL."""
        try:
            body = response.json()
            result = body.get("result") if isinstance(body, dict) and "version" in body else body
            if result is None:
                return []
            if row and isinstance(result, dict):
                result = [result]
            if not isinstance(result, list):
                raise TypeError(f"expected a list, got {type(result).__name__}")
            return [structure(item, cls) for item in result]
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise response.error(
                f"unexpected answer for a list of {cls.__name__}: {type(exc).__name__}: {str(exc)[:200]}"
            ) from None

    def _list(
        self,
        path: str,
        cls: type[M],
        *,
        params: Mapping[str, Any] | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
        row: bool = False,
    ) -> AsyncPager[M]:
        """An ``AsyncPager`` over a ``limit``/``offset`` listing: a page shorter than
        ``limit`` is the last (never assumes the server's maximum). ``row``: a per-user
        listing, whose one object (instead of a list of one) is read as a list of one."""
        base = dict(params or {})

        async def fetch(start: int, size: int) -> Sequence[M]:
            query = {**base, "limit": str(size), "offset": str(start)}
            return self._structure_list(await self._request("GET", path, params=query), cls, row=row)

        return AsyncPager.from_offsets(fetch, limit=limit, offset=offset)


Fetch = Callable[[int, int], Awaitable[Sequence[Any]]]


@contextlib.contextmanager
def _no_credential() -> Iterator[None]:
    """Around a request sent without any credential: the gateway's 401 becomes an
    AuthenticationError that says none was given (rather than that a token was rejected)."""
    try:
        yield
    except Unauthorized as exc:
        error = AuthenticationError(
            f"no credential was given (the client has no token, refresh token or password): {exc.message}",
            status=exc.status, method=exc.method, url=exc.url, body=exc.body,
        )  # fmt: skip
        raise error from None


class _BasicAuth(Auth):
    """``Authorization: Basic <base64 username:password>``, both kept secret."""

    def __init__(self, encoded: str, password: str):
        self._encoded = encoded
        self._password = password

    def apply(self, headers: MutableMapping[str, str]) -> None:
        headers["Authorization"] = f"Basic {self._encoded}"

    def secrets(self) -> Iterable[str]:
        return (self._encoded, self._password)

    def __repr__(self) -> str:
        return "_BasicAuth(***)"
