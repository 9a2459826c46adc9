"""An outbox kept in a sensor's cursor: every alert, per channel, until that channel took it.

A message is queued once per configured channel, so an email that went out is never sent
again because the webhook failed. An undelivered item is retried on later ticks with
exponential backoff; one older than the notifier's `max_age_hours` is logged as not
delivered and dropped. Items are plain JSON, so the cursor stays the only state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from metrics_pipeline.automation.notifier import AlertNotifier, DeliveryError

Item = dict[str, Any]


def queue(outbox: list[Item], channels: list[str], subject: str, body: str, now: float) -> None:
    """Add one message for each channel."""
    for channel in channels:
        outbox.append(
            {
                "channel": channel,
                "subject": subject,
                "body": body,
                "created": now,
                "attempts": 0,
                "next_attempt": now,
                "last_error": "",
            }
        )


@dataclass
class Report:
    sent: int = 0
    dropped: int = 0
    pending: int = 0
    errors: dict[str, str] = field(default_factory=dict)  # channel -> this tick's error

    def summary(self) -> str:
        """E.g. `2 sent, 1 pending (webhook hooks.example.test: HTTP 503)`."""
        parts = [f"{self.sent} sent", f"{self.pending} pending"]
        if self.dropped:
            parts.append(f"{self.dropped} dropped")
        text = ", ".join(parts)
        if self.errors:
            text += f" ({'; '.join(self.errors.values())})"
        return text


def _backoff(notifier: AlertNotifier, attempts: int) -> float:
    return min(notifier.retry_max_seconds, notifier.retry_base_seconds * 2 ** (attempts - 1))


def flush(
    outbox: list[Item], notifier: AlertNotifier, now: float, log
) -> tuple[list[Item], Report]:
    """Try every due item, oldest first; returns what is still pending and what happened.

    Never raises for a delivery failure. After a channel failed, its remaining items wait
    for the next tick, so a dead receiver costs one timeout per tick, not one per message.
    """
    report = Report()
    kept: list[Item] = []
    max_age = notifier.max_age_hours * 3600
    configured = set(notifier.channels())
    for item in outbox:
        channel, subject = item["channel"], item["subject"]
        if now - item["created"] > max_age:
            log.error(
                f"Could not deliver alert by {channel} within {notifier.max_age_hours:g} h "
                f"({item['attempts']} attempt(s), last error: {item['last_error'] or 'none'}); "
                f"dropped: {subject}"
            )
            report.dropped += 1
            continue
        if channel in report.errors or channel not in configured or item["next_attempt"] > now:
            kept.append(item)
            continue
        try:
            notifier.deliver(channel, subject, item["body"])
        except DeliveryError as exc:
            error = str(exc)
        except Exception as exc:
            # Not one of ours: its text may hold an address, so only its class is kept.
            error = f"{channel}: {type(exc).__name__}"
        else:
            report.sent += 1
            continue
        attempts = item["attempts"] + 1
        delay = _backoff(notifier, attempts)
        kept.append(
            {**item, "attempts": attempts, "next_attempt": now + delay, "last_error": error}
        )
        report.errors[channel] = error
        log.warning(f"Alert not delivered ({error}); retrying in {delay:g} s: {subject}")
    report.pending = len(kept)
    return kept, report


def send_and_keep(
    context,
    notifier: AlertNotifier,
    messages: list[tuple[str, str]],
    outbox: list[Item],
    now: float,
) -> tuple[list[Item], Report]:
    """Queue new messages on every configured channel, then try everything due."""
    outbox = list(outbox)
    channels = notifier.channels()
    for subject, body in messages:
        queue(outbox, channels, subject, body, now)
        context.log.info(f"{subject}\n{body}")
    return flush(outbox, notifier, now, context.log)
