"""uvicorn's httptools protocol with bounds: header sizes, a read deadline, no timer left behind.

The API server's requests are small and arrive at once, so anything else is a stalled or hostile
client. What it gets is decided here, below the ASGI app, where the bytes arrive:

- headers over ``max_header_bytes`` in total, or one line over ``max_header_line_bytes``: 431;
- a request whose headers and body are not all in by ``read_timeout_seconds`` after its first byte
  (or after the handshake, for a connection that sends nothing): 408;
- a request httptools cannot parse, or one asking for a protocol upgrade (``Upgrade`` with
  ``Connection: upgrade``, or CONNECT): 400.

Each answer is a JSON ``Status`` with ``Connection: close``; the connection is then closed, and
aborted if the peer does not finish the TLS goodbye within a second.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from webhook.engine import review as wire

# How long a closed connection may take to finish the TLS goodbye before it is aborted.
_CLOSE_GRACE_SECONDS = 1.0


@dataclass(frozen=True)
class Limits:
    """What one request may cost before its body reaches the app."""

    max_header_bytes: int = 32 * 1024
    max_header_line_bytes: int = 8 * 1024
    # The API server gives a webhook 5 s (timeoutSeconds in our configuration), at most 30 s.
    read_timeout_seconds: float = 5.0


class BoundedHttpProtocol(HttpToolsProtocol):
    """One connection; ``limits`` is set on the subclass that ``bounded_protocol`` makes."""

    limits: Limits = Limits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading_headers = True
        self._header_bytes = 0
        self._refused = False
        # When the request now arriving began: its first byte, or the handshake for a connection's
        # first request; None between requests. One timer per connection watches it (a timer armed
        # and cancelled per request cost more than the rest of these checks together).
        self._reading_since: float | None = None
        self._watch: asyncio.TimerHandle | None = None

    # Connection -------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A connection that never sends a request is closed as well.
        self._reading_since = self.loop.time()
        self._watch = self.loop.call_later(self.limits.read_timeout_seconds, self._check_deadline)

    def connection_lost(self, exc: Exception | None) -> None:
        # uvicorn cancels its keep-alive timer only on a clean close; after a reset the timer
        # kept the protocol, its TLS object and buffers (~70 KB) alive until it fired.
        self._unset_keepalive_if_required()
        self._cancel_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._reading_headers:
            # Feed no more than the header budget: httptools would otherwise buffer (and copy)
            # an endless header line.
            room = self.limits.max_header_bytes - self._header_bytes
            if len(data) > room:
                head, rest = data[:room], data[room:]
                self._header_bytes += len(head)
                super().data_received(head)
                if self._reading_headers and not self._refused:
                    self.refuse(431, f"request headers are over the limit of {self.limits.max_header_bytes} bytes")
                    return
                if not self._refused and self.parser is not None:
                    super().data_received(rest)
                return
            self._header_bytes += len(data)
        super().data_received(data)

    # Parser callbacks -------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_headers = True
        if self._reading_since is None:
            self._reading_since = self.loop.time()

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        # Checked once the headers are in (uvicorn keeps them, names lowercased, lengths kept): the
        # total is bounded already by data_received, and an override of on_header costs a call per
        # header of every request.
        limit = self.limits.max_header_line_bytes
        for name, value in self.headers:
            if len(name) + len(value) > limit:
                self.refuse(431, f"a request header line is over the limit of {limit} bytes")
                raise httptools.HttpParserError("header line too long")  # stops this feed
        if self.parser.should_upgrade():
            # ``Upgrade`` with ``Connection: upgrade`` (or CONNECT): httptools skips the body and
            # stops at the headers, leaving the rest of the read unparsed. uvicorn then ran the app
            # on an empty body and parsed the body's bytes, when they came in a later read, as the
            # next request (a review smuggled in a body was answered). We speak HTTP/1.1 only and
            # the API server never upgrades, so refuse and close. Not "ignore the header and read
            # the body": httptools offers no way to keep reading it (it sets the skip itself), so
            # we would be parsing the body ourselves; after a close there is no stream to desync.
            method = self.parser.get_method()
            what = "the CONNECT method is" if method == b"CONNECT" else "the Upgrade header is"
            self.refuse(400, f"{what} not supported: this server speaks HTTP/1.1 only")
            raise httptools.HttpParserError("upgrade refused")  # stops this feed
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._reading_since = None
        self._reading_headers = True
        self._header_bytes = 0
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to a request httptools cannot parse is text; ours is a Status.
        if not self._refused:
            self.refuse(400, "the request is not valid HTTP/1.1")

    # Refusals ---------------------------------------------------------------------------------

    def refuse(self, status: int, message: str) -> None:
        """Answer with a JSON Status and close, whatever the app was doing with this request."""
        if self._refused or self.transport is None:
            return
        self._refused = True
        self._cancel_deadline()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.response_started:
                self.transport.abort()  # half an answer is already out; nothing more can be said
                return
            # The app waits for the rest of the body: wake it with a disconnect, answer here.
            cycle.disconnected = True
            cycle.message_event.set()
        body = wire.error_body(status, message)
        head = (
            f"HTTP/1.1 {status} {_PHRASES.get(status, 'Error')}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
        ).encode("latin-1")
        if not self.transport.is_closing():
            self.transport.write(head + body)
            self.transport.close()
        self.loop.call_later(_CLOSE_GRACE_SECONDS, self._abort_if_open)

    def _abort_if_open(self) -> None:
        if self.transport is not None and self in self.connections:
            self.transport.abort()

    def _cancel_deadline(self) -> None:
        self._reading_since = None
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None

    def _check_deadline(self) -> None:
        """The watch: a request arriving for ``read_timeout_seconds`` is refused; otherwise the
        watch comes back when the request now arriving (or the next one, at the earliest) is due."""
        timeout = self.limits.read_timeout_seconds
        since, now = self._reading_since, self.loop.time()
        if since is not None and now - since >= timeout:
            self._watch = None
            self.refuse(408, f"the request was not received within {timeout:g} s")
            return
        self._watch = self.loop.call_later(timeout if since is None else since + timeout - now, self._check_deadline)

    def abort_stalled(self) -> bool:
        """At shutdown: drop a connection whose request is still arriving; True when it did."""
        cycle = self.cycle
        headers_pending = self._reading_headers and self._header_bytes > 0
        body_pending = cycle is not None and not cycle.response_complete and cycle.more_body
        if not (headers_pending or body_pending) or (cycle is not None and cycle.response_started):
            return False
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        self._refused = True
        self._cancel_deadline()
        self.transport.abort()
        return True


_PHRASES = {400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large"}


def bounded_protocol(limits: Limits) -> type[BoundedHttpProtocol]:
    """The protocol class for uvicorn's ``http=``, carrying these limits."""
    return type("BoundedHttpProtocol", (BoundedHttpProtocol,), {"limits": limits})
