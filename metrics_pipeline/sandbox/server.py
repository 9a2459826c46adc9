"""The sandbox Graph API over real HTTP on loopback.

Everything the API does lives in `sandbox.graph` (`FakeGraphApi`); this module only turns
HTTP requests into `FakeGraphApi.handle` calls and writes its `FakeResponse` back,
including the transport faults it describes (a delay, a body in slow pieces, a connection
dropped mid-body, an endless body); the fake also serves the euro reference rates feed at
`ecb_rates.FEED_PATH`. `/__sandbox/state` lets tests move the clock,
re-attribute conversions and remove delivery already reported, given the sandbox token as a
Bearer header and changes as JSON (see `graph.control`); the pipeline never calls it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Generator
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from metrics_pipeline.sandbox.faults import Fault
from metrics_pipeline.sandbox.graph import SANDBOX_TOKEN, FakeGraphApi, FakeResponse
from metrics_pipeline.sandbox.world import World

__all__ = ["SANDBOX_TOKEN", "SandboxHandler", "SandboxServer"]


class SandboxHandler(BaseHTTPRequestHandler):
    server_version = "sandbox-graph/1.0"
    protocol_version = "HTTP/1.1"
    api: FakeGraphApi  # set on the subclass made per server

    def log_message(self, format: str, *args: Any) -> None:  # quiet by default
        return

    def do_GET(self) -> None:
        self._exchange()

    def do_POST(self) -> None:
        self._exchange()

    def _exchange(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = dict(self.headers.items())
        self._send(self.api.handle(self.command, self.path, headers=headers, body=body))

    def _send(self, response: FakeResponse) -> None:
        if response.hold is not None:
            response.hold()
        if response.delay_seconds:
            time.sleep(response.delay_seconds)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.stream is not None:
            self._send_stream(response.stream)
            return
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.cut_at is not None:
            self._send_cut(response.body[: response.cut_at])
        else:
            self._send_pieces(response)

    def _send_pieces(self, response: FakeResponse) -> None:
        body = response.body
        step = max(1, -(-len(body) // response.pieces))
        try:
            for start in range(0, len(body), step):
                self.wfile.write(body[start : start + step])
                self.wfile.flush()
                if response.piece_delay:
                    time.sleep(response.piece_delay)
        except OSError:  # the client gave up on it
            self.close_connection = True

    def _send_cut(self, part: bytes) -> None:
        """Part of a body whose full length was announced, then the connection dropped."""
        self.wfile.write(part)
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(2)

    def _send_stream(self, stream: Generator[bytes, None, None]) -> None:
        """A body without Content-Length, until it ends or the client hangs up."""
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        with contextlib.closing(stream), contextlib.suppress(OSError):
            for chunk in stream:
                self.wfile.write(chunk)
            self.wfile.flush()


class SandboxServer:
    """Serve a `World` on 127.0.0.1; use as a context manager or start()/stop()."""

    def __init__(
        self,
        world: World | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        access_token: str = SANDBOX_TOKEN,
        app_secret: str | None = None,
        now: datetime | None = None,
    ) -> None:
        self.api = FakeGraphApi(world, access_token=access_token, app_secret=app_secret, now=now)
        self.state = self.api.state
        handler = type("BoundSandboxHandler", (SandboxHandler,), {"api": self.api})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, daemon=True, name="meta-sandbox"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Test conveniences: the fake's own, on the state the HTTP control endpoint changes.
    def set_revision(self, revision: int) -> None:
        self.api.set_revision(revision)

    def remove_delivery(self, account_id: str, day: date, ad_id: str | None = None) -> None:
        self.api.remove_delivery(account_id, day, ad_id)

    def inject(self, kind: str, **options: Any) -> Fault:
        return self.api.inject(kind, **options)

    def clear_faults(self) -> None:
        self.api.clear_faults()

    def rate_limit(self, account_id: str, calls: int, window_seconds: float) -> None:
        self.api.rate_limit(account_id, calls, window_seconds)
