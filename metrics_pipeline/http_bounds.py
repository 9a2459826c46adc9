"""Reading an HTTP answer from a server the pipeline does not control, within bounds.

Shared by the Meta client and the exchange-rate feed. `open_bounded` sends one request
without letting `requests` follow redirects: a redirect to another origin (scheme, host,
port) is refused, naming where it pointed, and one to the same origin is followed at most
`max_redirects` times. `read_body` reads the body as it arrives: its cap counts DECODED
bytes (urllib3 from 2.7 inflates no more than each read returns, so a gzip bomb stops at
the cap, not after inflating), and its deadline covers the whole body, so a body that
trickles in, each piece within the socket timeout, still ends.

Every refusal is a `BoundsError` whose `reason` continues a sentence that names the
server, e.g. f"{origin} {reason}" -> "http://127.0.0.1:8080 sent a body over the ...".
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

CHUNK_BYTES = 64 * 1024
MIB = 1024 * 1024


class BoundsError(Exception):
    """An answer refused by one of the bounds; `reason` says which, without any secret."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BodyTooLarge(BoundsError):
    """The decoded body passed the byte cap."""


class BodyTooSlow(BoundsError):
    """The body did not arrive whole within the deadline."""


class BodyBroken(BoundsError):
    """The connection failed while the body was being read."""


class RedirectRefused(BoundsError):
    """A redirect to another origin (`elsewhere`), or more redirects than allowed."""

    def __init__(self, reason: str, elsewhere: bool = False) -> None:
        super().__init__(reason)
        self.elsewhere = elsewhere


def origin(url: str) -> str:
    """scheme://host:port of a URL: safe to name in messages (no path, no query)."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = "?"
    return f"{parts.scheme}://{parts.hostname}:{port}"


def public_url(url: str) -> str:
    """scheme://host[:port]/path of a URL: what a message may name (no user or password,
    no query, no fragment, where a token could travel)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ":?"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def byte_cap(count: int) -> str:
    """'the 16777216-byte cap (16 MiB)'; the MiB only when whole."""
    whole = f" ({count // MIB} MiB)" if count % MIB == 0 else ""
    return f"the {count}-byte cap{whole}"


def open_bounded(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: float,
    max_redirects: int = 0,
    **arguments: Any,
) -> requests.Response:
    """The answer to `method url`, streamed and unread (read it with `read_body`, inside
    `with response:`). A 3xx to another origin than `url`'s raises RedirectRefused naming
    it; one to the same origin is requested again (same method and `arguments`) at most
    `max_redirects` times. `timeout` bounds the connect and each socket read."""
    here, hops = url, 0
    while True:
        response = session.request(
            method, here, timeout=timeout, stream=True, allow_redirects=False, **arguments
        )
        status = response.status_code
        if not 300 <= status < 400:
            return response
        response.close()  # never drained: a redirect's body is not read at all
        location = response.headers.get("Location")
        if not location:
            raise RedirectRefused(f"answered HTTP {status} without a Location")
        target = urljoin(here, location)
        if origin(target) != origin(url):
            raise RedirectRefused(
                f"answered HTTP {status} redirecting to {public_url(target)}, another "
                "origin: not followed",
                elsewhere=True,
            )
        if hops == max_redirects:
            refused = (
                "redirects are not followed"
                if max_redirects == 0
                else f"more than {max_redirects} redirects"
            )
            raise RedirectRefused(
                f"answered HTTP {status} redirecting to {public_url(target)}: {refused}"
            )
        here, hops = target, hops + 1


def read_body(response: requests.Response, *, max_bytes: int, deadline_seconds: float) -> bytes:
    """The whole decoded body, read as it arrives so that neither its size nor the time it
    takes can grow without bound."""
    too_large = f"sent a body over {byte_cap(max_bytes)}"
    declared = response.headers.get("Content-Length", "")
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    # A declared length says the decoded size only when the body is not compressed.
    if encoding in ("", "identity") and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(too_large)
    deadline = time.monotonic() + deadline_seconds
    body = bytearray()
    try:
        while chunk := response.raw.read1(CHUNK_BYTES, decode_content=True):
            body += chunk
            if len(body) > max_bytes:
                raise BodyTooLarge(too_large)
            if time.monotonic() > deadline:
                raise BodyTooSlow(f"did not send the whole body within {deadline_seconds:g}s")
    except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
        raise BodyBroken(f"broke off the body ({type(exc).__name__})") from None
    return bytes(body)
