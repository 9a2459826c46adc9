"""Everything the fake Graph API remembers between requests."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from metrics_pipeline.sandbox.ecb_rates import EcbRates
from metrics_pipeline.sandbox.faults import FaultPlan
from metrics_pipeline.sandbox.world import World

SANDBOX_TOKEN = "sandbox-access-token"  # noqa: S105 - the sandbox's own, not a credential


@dataclass
class SandboxState:
    world: World
    access_token: str = SANDBOX_TOKEN
    app_secret: str | None = None
    revision: int = 0  # how many rounds of late attribution have happened
    now: datetime | None = None  # None: the real clock
    # Seconds for durations (usage windows, report jobs); tests of the fake step it by hand.
    monotonic: Callable[[], float] = time.monotonic
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: dict[str, deque] = field(default_factory=lambda: defaultdict(deque))
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    usage_window_seconds: float = 300.0
    usage_call_limit: int = 5000
    faults: FaultPlan = field(default_factory=FaultPlan)
    # account digits -> (calls allowed, per window seconds): a tight, enforced limit.
    rate_limits: dict[str, tuple[int, float]] = field(default_factory=dict)
    throttled: int = 0  # throttling errors the sandbox has returned
    report_seconds: float = 1.0  # how long a report job takes to compute
    # Where report jobs are computed after their start was answered, one at a time.
    computing: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="sandbox-report")
    )
    ecb: EcbRates = field(default_factory=EcbRates)  # the euro reference rates feed
    feed_requests: list[str] = field(default_factory=list)  # targets of the feed's requests

    def clock(self) -> datetime:
        return self.now or datetime.now(UTC)
