"""Meta's usage headers, read on every response, and the pause they call for.

State is shared per process across threads and keyed by ad account (and app), so
concurrent requests to one account slow down together rather than each on its own.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass
class Usage:
    percent: float = 0.0  # the highest usage figure of any header, 0-100
    regain_at: float = 0.0  # monotonic time before which Meta refuses the account
    reset_seconds: float = 0.0


def _load(value: str | None) -> object:
    if not value:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return None


def read_usage(headers: Mapping[str, str]) -> tuple[float, float, float]:
    """(highest usage percent, seconds until access is regained, reset window seconds)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    percents: list[float] = []
    regain_seconds = 0.0
    reset_seconds = 0.0
    app = _load(lowered.get("x-app-usage"))
    if isinstance(app, dict):
        percents += [
            float(app.get(k, 0) or 0) for k in ("call_count", "total_time", "total_cputime")
        ]
    account = _load(lowered.get("x-ad-account-usage"))
    if isinstance(account, dict):
        percents.append(float(account.get("acc_id_util_pct", 0) or 0))
        reset_seconds = float(account.get("reset_time_duration", 0) or 0)
    business = _load(lowered.get("x-business-use-case-usage"))
    if isinstance(business, dict):
        for entries in business.values():
            for entry in entries if isinstance(entries, list) else []:
                percents += [
                    float(entry.get(k, 0) or 0)
                    for k in ("call_count", "total_time", "total_cputime")
                ]
                minutes = float(entry.get("estimated_time_to_regain_access", 0) or 0)
                regain_seconds = max(regain_seconds, minutes * 60)
    insights = _load(lowered.get("x-fb-ads-insights-throttle"))
    if isinstance(insights, dict):
        percents += [float(insights.get(k, 0) or 0) for k in ("app_id_util_pct", "acc_id_util_pct")]
    return (max(percents, default=0.0), regain_seconds, reset_seconds)


RESET_MARGIN_SECONDS = 0.05


class UsageGovernor:
    """Shared usage state: how close each account is to Meta's limits, and for how long
    Meta has said to stay away."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._usage: dict[str, Usage] = {}

    def observe(self, key: str, headers: Mapping[str, str]) -> None:
        percent, regain_seconds, reset_seconds = read_usage(headers)
        with self._lock:
            usage = self._usage.setdefault(key, Usage())
            usage.percent = percent
            usage.reset_seconds = reset_seconds
            if regain_seconds:
                usage.regain_at = max(usage.regain_at, time.monotonic() + regain_seconds)

    def hold(self, key: str, seconds: float) -> None:
        with self._lock:
            usage = self._usage.setdefault(key, Usage())
            usage.regain_at = max(usage.regain_at, time.monotonic() + seconds)

    def pause_for(self, key: str, slow_down_at: float = 75.0, max_pause: float = 60.0) -> float:
        """Seconds to wait before the next request to `key`.

        Nothing below `slow_down_at` percent; above it the pause grows linearly to
        `max_pause` (or the reported reset time, if shorter) at 95 %, so a busy account
        drifts down towards the threshold instead of hitting the limit.
        """
        with self._lock:
            usage = self._usage.get(key)
            if usage is None:
                return 0.0
            wait = max(0.0, usage.regain_at - time.monotonic())
            if usage.percent >= slow_down_at:
                share = min(1.0, (usage.percent - slow_down_at) / max(1.0, 95.0 - slow_down_at))
                # A little past the reported reset: Meta rounds it, and a call that lands
                # just before the oldest one leaves the window is the one over the limit.
                reset = usage.reset_seconds + RESET_MARGIN_SECONDS
                ceiling = min(max_pause, reset) if usage.reset_seconds else max_pause
                wait = max(wait, ceiling * share)
            return wait


GOVERNOR = UsageGovernor()
