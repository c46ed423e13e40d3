"""The public base URL of the application: where a client reaches it, for every URL vosim writes.

Every document the service writes holds absolute URLs: the ``accessURL``
of VOSI capabilities and DataLink service descriptors, UWS job and result
links, DataLink ``access_url``, the similarity results' preview and file
URLs, the page's links. They must be right when vosim runs on its own,
when an archive mounts it under a prefix of its own Starlette or FastAPI
application, and behind a reverse proxy. The base is, in this order:

1. the configured public base URL (``VOSIM_PUBLIC_URL`` or the
   ``public_url`` argument of `vo_service.app.create_app`), as is;
2. when told to trust them (``VOSIM_TRUST_FORWARDED``), the proxy's
   ``Forwarded`` (RFC 7239: ``proto``, ``host``) or ``X-Forwarded-Proto``,
   ``X-Forwarded-Host`` and ``X-Forwarded-Prefix`` headers, followed by the
   path the application is mounted at;
3. the request's own scheme and ``Host``, followed by the path the
   application is mounted at: the ASGI ``root_path`` when the request
   reached vosim (a Starlette ``Mount`` sets it, as does uvicorn's
   ``--root-path``).

Forwarded headers are never trusted unless told: any client can send them,
and a service that believed them would write a host of the client's
choosing into the VOTables, job documents and pages it serves (host-header
injection), which a shared cache or a stored async result then hands to
other users. Only a proxy that sets these headers itself, overwriting what
the client sent, makes them trustworthy; the operator says so. Header
values that are not a scheme, a host or a path are ignored in any case.

`PublicBaseMiddleware` works the base out once per request, where the
mount path is still the ASGI ``root_path`` of vosim's application (deeper
in, Starlette's own ``Mount("/tap")`` extends it, and ``request.base_url``
gives the *outermost* application's root instead); `public_base_url`
reads it back in any handler.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import quote

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["PublicBase", "PublicBaseMiddleware", "public_base_url"]

log = logging.getLogger(__name__)

_SCOPE_KEY = "vosim.public_base"
_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$"
)
_PREFIX = re.compile(r"^(?:/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*/?$")
_SCHEMES = frozenset({"http", "https"})
# RFC 7239 section 4: forwarded-pair = token "=" ( token / quoted-string ), pairs split by ";",
# elements by ","
_FORWARDED_PAIR = re.compile(
    r'\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)=("(?:[^"\\]|\\.)*"|[^;,\s]*)\s*([;,]?)'
)


@dataclass(frozen=True)
class PublicBase:
    """How the application finds its public base URL (the policy of this module).

    Parameters
    ----------
    public_url
        The configured public base URL; None to derive it from each request.
    trust_forwarded
        Believe the reverse proxy's ``Forwarded`` / ``X-Forwarded-*``
        headers (only when a proxy sets them; see the module docstring).
    """

    public_url: str | None = None
    trust_forwarded: bool = False

    def of(self, scope: Scope) -> str:
        """Return the public base URL (no trailing slash) of a request's ASGI scope.

        ``scope`` must be the one vosim's application received: its
        ``root_path`` is the path vosim is mounted at.
        """
        if self.public_url:
            return self.public_url.rstrip("/")
        headers = Headers(scope=scope)
        scheme = scope.get("scheme", "http")
        host = _request_host(scope, headers)
        prefix = ""
        if self.trust_forwarded:
            forwarded = _first_forwarded_element(headers.get("forwarded", ""))
            scheme = _valid_scheme(
                forwarded.get("proto") or _first(headers.get("x-forwarded-proto")), scheme
            )
            host = _valid_host(
                forwarded.get("host") or _first(headers.get("x-forwarded-host")), host
            )
            prefix = _valid_prefix(_first(headers.get("x-forwarded-prefix")))
        root_path = quote(scope.get("root_path", ""), safe="/%:@!$&'()*+,;=-._~")
        return f"{scheme}://{host}{prefix}{root_path.rstrip('/')}"


def public_base_url(request: Request) -> str:
    """Return the public base URL of the vosim application for this request (no trailing slash)."""
    return request.scope[_SCOPE_KEY]


class PublicBaseMiddleware:
    """Record the request's public base URL in its scope, and refuse requests before start-up.

    A Starlette ``Mount`` does not run the lifespan of the application it
    mounts: the parent application must run vosim's (README, "Mount inside
    your application"). Until it has, the services are not open (no job
    folder, no similarity vectors); requests are answered 503 with what
    to do, rather than failing later in some handler.

    Parameters
    ----------
    app
        The rest of the application.
    policy
        How to find the public base URL.
    """

    def __init__(self, app: ASGIApp, policy: PublicBase) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Record the base (HTTP requests) and pass the request on."""
        if scope["type"] == "http":
            if not getattr(scope["app"].state, "started", False):
                response = PlainTextResponse(
                    "vosim has not started: an application that mounts vosim must run its "
                    "lifespan (app.router.lifespan_context of create_app's application; see "
                    "the README, 'Mount inside your application')",
                    status_code=503,
                )
                await response(scope, receive, send)
                return
            scope[_SCOPE_KEY] = self.policy.of(scope)
        await self.app(scope, receive, send)


def _request_host(scope: Scope, headers: Headers) -> str:
    """Return the ``Host`` the client asked for, or the server's address if it is no host."""
    server = scope.get("server")
    if server is not None:
        own = f"{server[0]}:{server[1]}" if server[1] is not None else server[0]
    else:
        own = "localhost"
    return _valid_host(headers.get("host"), own)


def _first(value: str | None) -> str | None:
    """Return the first of a comma-separated list: the value the outermost proxy set."""
    if value is None:
        return None
    return value.split(",", 1)[0].strip() or None


def _first_forwarded_element(value: str) -> dict[str, str]:
    """Return the parameters of the first element of a ``Forwarded`` header (RFC 7239, 4)."""
    pairs: dict[str, str] = {}
    position = 0
    while position < len(value):
        match = _FORWARDED_PAIR.match(value, position)
        if match is None:
            return {}
        name, token, separator = match.groups()
        if token.startswith('"'):
            token = re.sub(r"\\(.)", r"\1", token[1:-1])
        pairs.setdefault(name.lower(), token)
        if separator != ";":
            break
        position = match.end()
    return pairs


def _valid_scheme(value: str | None, fallback: str) -> str:
    if value is None:
        return fallback
    if value.lower() in _SCHEMES:
        return value.lower()
    log.warning("ignoring a forwarded scheme that is not http or https: %r", value)
    return fallback


def _valid_host(value: str | None, fallback: str) -> str:
    if value is None:
        return fallback
    if _HOST.match(value):
        return value
    log.warning("ignoring a host that is not a host name or address: %r", value)
    return fallback


def _valid_prefix(value: str | None) -> str:
    if value is None:
        return ""
    if _PREFIX.match(value):
        return value.rstrip("/")
    log.warning("ignoring an X-Forwarded-Prefix that is not a URL path: %r", value)
    return ""
