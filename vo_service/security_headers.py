"""Headers every response carries: what the browser may load, sniff and frame.

The pages load nothing from elsewhere (no CDN, no inline script or style),
so the policy is ``default-src 'self'``, plus ``connect-src`` to the SAMP
Web Profile hub on localhost that the page's SAMP client talks to. The
same headers go on VOTables, JSON and errors: a document with user text
in it (a target name, an upload's file name) is then never run as a page.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_SECURITY_POLICY", "SecurityHeadersMiddleware"]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; connect-src 'self' http://localhost:21012 http://127.0.0.1:21012; "
    "frame-ancestors 'self'; base-uri 'self'; form-action 'self'"
)
"""The policy of every response (the SAMP hub's Web Profile listens on port 21012)."""

_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"referrer-policy", b"same-origin"),
)
_NAMES = frozenset(name for name, _ in _HEADERS)


class SecurityHeadersMiddleware:
    """ASGI middleware: set `_HEADERS` on every HTTP response, replacing any of the same name."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the application, adding the headers to its response start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() not in _NAMES
                ]
                message = {**message, "headers": [*headers, *_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
