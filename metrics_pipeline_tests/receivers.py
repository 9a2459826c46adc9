"""Local alert receivers on loopback: a webhook endpoint and an SMTP server (with TLS)."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WebhookReceiver:
    """Answers every POST with `status` (and `location`, if set, as its Location); keeps the
    bodies it accepted (2xx) in `posts`. A GET, which a client following a 301 or 302 would
    send, is counted and answered with `status` too. With `body_seconds`, the answer's body
    has no announced length and trickles in (a kilobyte every 10 ms) for that long, unless
    the client hangs up first."""

    def __init__(
        self,
        port: int = 0,
        path: str = "/hook",
        status: int = 204,
        location: str | None = None,
        body_seconds: float = 0.0,
    ) -> None:
        self.path = path
        self.status = status
        self.location = location
        self.body_seconds = body_seconds
        self.posts: list[dict] = []
        self.hits = 0  # every request, refused ones and GETs too
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length))
                receiver.hits += 1
                if receiver.status < 300:
                    receiver.posts.append(body)
                self._answer()

            def do_GET(self) -> None:
                receiver.hits += 1
                self._answer()

            def _answer(self) -> None:
                self.send_response(receiver.status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                if not receiver.body_seconds:
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_header("Connection", "close")
                self.end_headers()
                until = time.monotonic() + receiver.body_seconds
                with contextlib.suppress(OSError):  # the client hung up
                    while time.monotonic() < until:
                        self.wfile.write(b"x" * 1024)
                        self.wfile.flush()
                        time.sleep(0.01)

            def log_message(self, *args) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def __enter__(self) -> WebhookReceiver:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def webhook_receiver() -> Iterator[tuple[str, list[dict]]]:
    with WebhookReceiver() as receiver:
        yield receiver.url, receiver.posts


class _Inbox:
    def __init__(self) -> None:
        self.messages: list = []
        self.logins: list[str] = []  # user names of every AUTH attempt, with or without TLS

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        self.logins.append(getattr(auth_data, "login", b"").decode())
        return AuthResult(success=True)


@contextmanager
def smtp_receiver() -> Iterator[tuple[int, list]]:
    with smtp_server() as (port, inbox):
        yield port, inbox.messages


@contextmanager
def smtp_server(
    *, starttls: ssl.SSLContext | None = None, implicit_tls: ssl.SSLContext | None = None
) -> Iterator[tuple[int, _Inbox]]:
    """An SMTP server that accepts any login; AUTH is offered in clear too, so a client
    that would send a password without TLS is caught doing it."""
    inbox = _Inbox()
    port = free_port()
    options: dict = {"authenticator": inbox.authenticate, "auth_require_tls": False}
    if starttls is not None:
        options.update(tls_context=starttls, require_starttls=True)
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, ssl_context=implicit_tls, **options
    )
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no system trusts, and its key (PEM files)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
