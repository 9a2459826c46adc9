"""Step retries and the concurrency pool of the steps that call Meta."""

import os

from dagster import Backoff, Jitter, RetryPolicy

META_POOL = "meta_api"
RETRY_DELAY_ENV = "METRICS_STEP_RETRY_DELAY_SECONDS"
MAX_RETRIES_ENV = "METRICS_STEP_MAX_RETRIES"


def meta_retry_policy() -> RetryPolicy:
    """Step retries for the assets that call Meta: after the client's own time budget ran
    out (Meta stayed throttled or down) or the database dropped mid-write. The first delay
    (default 300 s) doubles, with jitter; at most METRICS_STEP_MAX_RETRIES (2) retries."""
    delay = float(os.environ.get(RETRY_DELAY_ENV, "300"))
    return RetryPolicy(
        max_retries=int(os.environ.get(MAX_RETRIES_ENV, "2")),
        delay=delay,
        backoff=Backoff.EXPONENTIAL,
        jitter=Jitter.PLUS_MINUS,
    )
