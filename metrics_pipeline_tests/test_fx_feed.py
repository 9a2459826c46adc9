"""The exchange-rate feed read within bounds and parsed as XML, each defence proved against
a sandbox fault over real HTTP.

A body without end, a gzip bomb, a trickle, a redirect to another server, a publication
hidden in a comment and entity tricks: each ends within seconds, in bounded memory, with an
error naming the feed (or, for the comment, with exactly the published rates).
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from metrics_pipeline.fx.ecb import FeedError
from metrics_pipeline.fx.resource import FxRatesUnavailableError, FxResource
from metrics_pipeline.sandbox.ecb_rates import FEED_PATH
from metrics_pipeline.sandbox.server import SandboxServer
from metrics_pipeline_tests.conftest import NOW
from metrics_pipeline_tests.helpers import finish_within

MIB = 1024 * 1024


@pytest.fixture
def feed_sandbox(world) -> Iterator[SandboxServer]:
    with SandboxServer(world, now=NOW) as server:
        yield server


def feed(sandbox: SandboxServer, **settings: Any) -> FxResource:
    return FxResource(rates_url=f"{sandbox.url}{FEED_PATH}", **settings)


def named(sandbox: SandboxServer) -> str:
    return f"exchange-rate feed {sandbox.url}{FEED_PATH}: "


def measured(seconds: float, work: Callable[[], Any]) -> tuple[BaseException | None, float, int]:
    """(what `work` raised, seconds it took, peak bytes Python allocated meanwhile, in every
    thread) - a failure if it runs longer than `seconds`."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        finish_within(seconds, work)
        raised = None
    except (FxRatesUnavailableError, FeedError) as exc:
        raised = exc
    finally:
        took = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return raised, took, peak


def truth(sandbox: SandboxServer) -> dict:
    return sandbox.state.ecb.publications(NOW)


def test_the_shipped_feed_limits_read_the_whole_history(feed_sandbox):
    shipped = FxResource()
    assert shipped.max_response_bytes == 16 * MIB
    assert shipped.body_deadline_seconds == 60.0
    assert shipped.timeout_seconds == 60.0
    assert shipped.max_redirects == 3
    # The sandbox's history (2020 on, 8 currencies) read with the shipped limits.
    assert feed(feed_sandbox).publications() == truth(feed_sandbox)


@pytest.mark.parametrize("cap", [1 * MIB, 16 * MIB], ids=["1MiB", "shipped"])
def test_a_feed_without_end_stops_at_the_cap_in_bounded_memory(feed_sandbox, cap):
    fault = feed_sandbox.inject("feed_huge_body", size_bytes=512 * MIB)
    raised, took, peak = measured(
        10, lambda: feed(feed_sandbox, max_response_bytes=cap).publications()
    )
    assert isinstance(raised, FxRatesUnavailableError)
    assert str(raised) == (
        f"{named(feed_sandbox)}sent a body over the {cap}-byte cap ({cap // MIB} MiB)"
    )
    assert took < 5, took
    assert peak < 3 * cap + 4 * MIB, peak  # the body held once or twice, never 512 MiB
    deadline = time.monotonic() + 5
    while fault.sent_bytes == 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # the sandbox counts once its write fails
    assert 0 < fault.sent_bytes < cap + 32 * MIB  # the cap and what loopback buffers hold


def test_a_gzip_bomb_stops_at_the_decoded_cap(feed_sandbox):
    # 256 MiB inflated from about 260 KB sent: a cap on the bytes as sent would let it in.
    fault = feed_sandbox.inject("feed_gzip_bomb", size_bytes=256 * MIB)
    raised, took, peak = measured(
        10, lambda: feed(feed_sandbox, max_response_bytes=MIB).publications()
    )
    assert fault.fired == 1
    assert str(raised) == f"{named(feed_sandbox)}sent a body over the 1048576-byte cap (1 MiB)"
    assert took < 5, took
    assert peak < 8 * MIB, peak


def test_a_trickling_feed_ends_at_the_body_deadline(feed_sandbox):
    # 20 pieces 0.2 s apart: each read is well within the socket timeout, the body takes 4 s.
    feed_sandbox.inject("feed_slow_body", pieces=20, delay_seconds=0.2)
    raised, took, _ = measured(
        10, lambda: feed(feed_sandbox, body_deadline_seconds=1.0).publications()
    )
    assert str(raised) == f"{named(feed_sandbox)}did not send the whole body within 1s"
    assert 1.0 <= took < 3.0, took


def test_a_redirect_to_another_origin_takes_nothing_from_it(feed_sandbox, world):
    with SandboxServer(world, now=NOW) as elsewhere:
        # Another loopback port is another origin; its feed has other rates.
        newest = max(truth(elsewhere))
        elsewhere.state.ecb.correct("USD", newest, Decimal("9.9999"))
        fault = feed_sandbox.inject("feed_redirect", target=elsewhere.url)
        raised, took, _ = measured(10, lambda: feed(feed_sandbox).publications())
        assert fault.fired == 1
        assert elsewhere.state.feed_requests == []
    assert str(raised) == (
        f"{named(feed_sandbox)}answered HTTP 302 redirecting to {elsewhere.url}{FEED_PATH}, "
        "another origin: not followed (if that address is trusted, set METRICS_FX_RATES_URL "
        "to it)"
    )
    assert took < 5, took


def test_a_redirect_within_the_feed_origin_is_followed_a_bounded_number_of_times(feed_sandbox):
    once = feed_sandbox.inject("feed_redirect", status=301)
    assert feed(feed_sandbox).publications() == truth(feed_sandbox)
    assert once.fired == 1
    assert feed_sandbox.state.feed_requests == [FEED_PATH, f"{FEED_PATH}?moved=1"]

    feed_sandbox.state.feed_requests.clear()
    feed_sandbox.inject("feed_redirect", count=-1)  # a loop
    raised, took, _ = measured(10, lambda: feed(feed_sandbox).publications())
    assert str(raised) == (
        f"{named(feed_sandbox)}answered HTTP 302 redirecting to {feed_sandbox.url}{FEED_PATH}: "
        "more than 3 redirects"
    )
    assert len(feed_sandbox.state.feed_requests) == 4  # the request and 3 redirects followed
    assert took < 5, took


def test_a_publication_inside_a_comment_is_not_read(feed_sandbox):
    feed_sandbox.inject("feed_comment_cube")
    body = feed_sandbox.state.ecb.feed(NOW)
    assert b'<Cube currency="USD" rate="9.9999"/>' not in body  # only the comment has it
    publications = finish_within(10, lambda: feed(feed_sandbox).publications())
    assert publications == truth(feed_sandbox)


@pytest.mark.parametrize("kind", ["feed_entity_bomb", "feed_entity_rate"])
def test_entity_tricks_are_refused_naming_the_feed(feed_sandbox, kind):
    fault = feed_sandbox.inject(kind)
    raised, took, peak = measured(10, lambda: feed(feed_sandbox).publications())
    assert fault.fired == 1
    assert isinstance(raised, FeedError)
    assert str(raised) == (
        f"{named(feed_sandbox)}refused, the XML declares a document type ('gesmes:Envelope'); "
        "the ECB feed has none, and no entity is ever expanded"
    )
    assert took < 5, took
    assert peak < 32 * MIB, peak
