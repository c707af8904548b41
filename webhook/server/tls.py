"""The server's TLS: an SSLContext per certificate pair, swapped in for new handshakes when the files change."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from webhook.engine.errors import ConfigError

log = logging.getLogger("meshswitch.tls")


def build_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server context for one pair: TLS 1.2 or newer, HTTP/1.1 (all uvicorn speaks)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    context.load_cert_chain(cert_file, key_file)
    return context


@dataclass(frozen=True)
class LoadedPair:
    """A certificate pair in use: its context, validity window and the digest of its files."""

    context: ssl.SSLContext
    not_before: dt.datetime
    not_after: dt.datetime
    digest: bytes


class CertificateReloader:
    """Serves the newest certificate pair that loads, without restarting the listener.

    The listener's context has an SNI callback that hands every new handshake the current pair's
    context; a connection already open keeps the one it started with. Files are polled, not
    watched: a Secret volume swaps a symlink, which inotify on the files does not see.
    """

    def __init__(
        self,
        cert_file: Path,
        key_file: Path,
        *,
        on_change: Callable[[LoadedPair], None] | None = None,
        on_failure: Callable[[Exception], None] | None = None,
    ) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self._on_change = on_change
        self._on_failure = on_failure
        self._failed_digest: bytes | None = None
        try:
            self.current = self._load()
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise ConfigError(f"cannot load certificate {cert_file} with key {key_file}: {exc}") from None
        if on_change is not None:
            on_change(self.current)

    def server_context(self) -> ssl.SSLContext:
        """The context to listen with; it only dispatches handshakes to the current pair."""
        listener = build_context(self.cert_file, self.key_file)

        def pick_pair(sock: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
            # OpenSSL calls this for every ClientHello, with or without SNI.
            current = self.current.context
            if sock.context is not current:
                sock.context = current

        listener.sni_callback = pick_pair
        return listener

    def poll(self) -> bool:
        """Load the pair if its files changed; True when a new pair is now served.

        A pair that does not load (a half-written rotation, a key that does not match) leaves the
        current one in place and is reported once, not at every poll.
        """
        try:
            digest = self._digest()
        except OSError as exc:
            return self._failed(b"unreadable", exc)
        if digest == self.current.digest or digest == self._failed_digest:
            return False
        try:
            pair = self._load()
        except (OSError, ssl.SSLError, ValueError) as exc:
            return self._failed(digest, exc)
        self.current = pair
        self._failed_digest = None
        log.info("serving new certificate %s, valid until %s", self.cert_file, pair.not_after.isoformat())
        if self._on_change is not None:
            self._on_change(pair)
        return True

    def is_valid(self, now: dt.datetime | None = None) -> bool:
        now = now or dt.datetime.now(dt.timezone.utc)
        return self.current.not_before <= now < self.current.not_after

    def _failed(self, digest: bytes, exc: Exception) -> bool:
        if digest != self._failed_digest:
            self._failed_digest = digest
            log.error("certificate %s did not load, still serving the previous one: %s", self.cert_file, exc)
            if self._on_failure is not None:
                self._on_failure(exc)
        return False

    def _digest(self) -> bytes:
        # Hash, not keep: the key's bytes need not stay in memory outside OpenSSL.
        return hashlib.sha256(self.cert_file.read_bytes() + b"\0" + self.key_file.read_bytes()).digest()

    def _load(self) -> LoadedPair:
        before = self._digest()
        context = build_context(self.cert_file, self.key_file)
        leaf = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
        # A rotation between the reads would pair a digest with other files; take it next poll.
        if self._digest() != before:
            raise ValueError("certificate files changed while loading")
        return LoadedPair(
            context=context,
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
            digest=before,
        )
