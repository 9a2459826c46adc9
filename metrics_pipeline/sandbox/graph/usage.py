"""Call counting and the usage headers Meta sends with every answer."""

from __future__ import annotations

import json

from metrics_pipeline.sandbox.graph.state import SandboxState


def count_call(state: SandboxState, account_id: str | None) -> tuple[float, float]:
    """Count this call; (usage percent, seconds until the oldest call leaves the window)."""
    now = state.monotonic()
    key = account_id or "_app"
    limit, window = state.rate_limits.get(key, (state.usage_call_limit, state.usage_window_seconds))
    with state.lock:
        calls = state.calls[key]
        calls.append(now)
        while calls and calls[0] < now - window:
            calls.popleft()
        pct = round(100.0 * len(calls) / limit, 2)
        reset = max(0.0, calls[0] + window - now) if calls else 0.0
    return pct, reset


def over_enforced_limit(state: SandboxState, account_id: str | None, pct: float) -> bool:
    """Whether an account with an enforced limit (`rate_limits`) went over it."""
    return bool(state.rate_limits.get(account_id or "")) and pct > 100.0


def usage_headers(
    state: SandboxState,
    account_id: str | None,
    pct: float,
    reset: float,
    regain_minutes: float = 0.0,
) -> dict[str, str]:
    shown = min(100.0, pct)
    headers = {
        "x-app-usage": json.dumps(
            {"call_count": int(shown), "total_time": int(shown), "total_cputime": int(shown)}
        ),
    }
    if account_id:
        business = state.world.account(account_id).spec.business_id
        headers["x-ad-account-usage"] = json.dumps(
            {
                "acc_id_util_pct": shown,
                "reset_time_duration": round(reset, 2),
                "ads_api_access_tier": "standard_access",
            }
        )
        headers["x-business-use-case-usage"] = json.dumps(
            {
                business: [
                    {
                        "type": "ads_insights",
                        "call_count": int(shown),
                        "total_cputime": int(shown),
                        "total_time": int(shown),
                        "estimated_time_to_regain_access": regain_minutes,
                    }
                ]
            }
        )
        headers["x-fb-ads-insights-throttle"] = json.dumps(
            {
                "app_id_util_pct": shown,
                "acc_id_util_pct": shown,
                "ads_api_access_tier": "standard_access",
            }
        )
    return headers
