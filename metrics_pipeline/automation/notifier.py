"""Where alerts go: a generic webhook (Slack- and Discord-compatible JSON) and SMTP mail.

Configured from the environment; with nothing configured nothing is sent. The webhook URL
and the SMTP password are secrets (a Slack or Discord webhook's path is its credential), so
they reach the resource through `EnvVar` and no error text ever names more than the host.
The webhook is posted to its own host only: a redirect is a failed delivery, kept in the
outbox and retried like any other.
"""

from __future__ import annotations

import ipaddress
import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import urljoin, urlsplit

import requests
from dagster import ConfigurableResource
from pydantic import Field

from metrics_pipeline.text import readable

WEBHOOK = "webhook"
EMAIL = "email"
REQUIRE_TLS_ENV = "METRICS_ALERT_SMTP_REQUIRE_TLS"


class DeliveryError(Exception):
    """One channel did not take a message. The text names the channel and host only."""


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine by itself: `localhost`, or an address literal in
    127.0.0.0/8 or ::1. Other names are never resolved for this: a resolver may lie."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def smtp_tls_required(host: str, require_tls: bool | None) -> bool:
    """Whether mail to `host` may go only over TLS. `require_tls` decides when set; unset,
    TLS is required for every host but loopback, so a server that does not offer STARTTLS
    (or a network that strips the offer) gets no mail in clear, while a relay on this
    machine still takes it."""
    if require_tls is not None:
        return require_tls
    return not is_loopback(host)


def _redirect_failure(url: str, response: requests.Response) -> str:
    """E.g. `HTTP 307 redirect to hooks.example.net:8443, not followed`: the target's host
    and port only, since a webhook's path is its credential."""
    location = response.headers.get("Location")
    if not location:
        return f"HTTP {response.status_code} redirect without a Location, not followed"
    target = urlsplit(urljoin(url, location))
    try:
        port = f":{target.port}" if target.port else ""
    except ValueError:
        port = ":?"
    where = readable(f"{target.hostname or '?'}{port}", limit=100)
    return f"HTTP {response.status_code} redirect to {where}, not followed"


class AlertNotifier(ConfigurableResource):
    webhook_url: str = Field(
        default="", description="METRICS_ALERT_WEBHOOK_URL (secret; wire it with EnvVar)"
    )
    smtp_host: str = Field(default="", description="METRICS_ALERT_SMTP_HOST")
    smtp_port: int = 25
    smtp_ssl: bool = Field(default=False, description="Implicit TLS (SMTPS, usually port 465)")
    smtp_require_tls: bool | None = Field(
        default=None,
        description="METRICS_ALERT_SMTP_REQUIRE_TLS: true refuses to send mail over a "
        "connection without TLS, false allows it; unset: required for every host but "
        "loopback (see `smtp_tls_required`)",
    )
    smtp_ca_file: str = Field(
        default="", description="PEM file of CAs to verify the mail server by; empty: system CAs"
    )
    smtp_username: str = ""
    smtp_password: str = Field(default="", description="METRICS_ALERT_SMTP_PASSWORD (secret)")
    mail_from: str = "metrics-pipeline@localhost"
    mail_to: str = Field(default="", description="Comma-separated recipients")
    timeout_seconds: float = 10.0
    retry_base_seconds: float = Field(
        default=60.0, description="First retry delay of an undelivered alert; doubles each time"
    )
    retry_max_seconds: float = Field(default=3600.0, description="Longest delay between retries")
    max_age_hours: float = Field(
        default=24.0, description="An alert not delivered within this is logged and dropped"
    )

    def channels(self) -> list[str]:
        """The configured channels; each alert is kept per channel until that one took it."""
        found = []
        if self.webhook_url:
            found.append(WEBHOOK)
        if self.smtp_host and self.mail_to:
            found.append(EMAIL)
        return found

    @property
    def enabled(self) -> bool:
        return bool(self.channels())

    def deliver(self, channel: str, subject: str, body: str) -> None:
        """Send one message through one channel; raises DeliveryError if it was not taken."""
        if channel == WEBHOOK:
            self._post_webhook(subject, body)
        elif channel == EMAIL:
            self._send_mail(subject, body)
        else:
            raise DeliveryError(f"{channel}: not a channel")

    def _post_webhook(self, subject: str, body: str) -> None:
        """POST once to the configured URL. A redirect is never followed: a 307/308 would
        carry the alert to another host, a 301/302 would turn it into a GET that drops it
        while looking delivered. Only the status counts, so the receiver's body is never
        read: neither its size nor how slowly it comes can hold the sensor up."""
        host = urlsplit(self.webhook_url).hostname or "?"
        text = f"*{subject}*\n{body}"
        failure = None
        try:
            # `text` for Slack and most webhooks, `content` (2,000 characters) for Discord.
            response = requests.post(
                self.webhook_url,
                json={"text": text, "content": text[:2000]},
                timeout=self.timeout_seconds,
                allow_redirects=False,
                stream=True,
            )
        except requests.RequestException as exc:
            # The exception's own text holds the URL: keep its class name only, and raise
            # outside the handler so it is not chained as the context either.
            failure = type(exc).__name__
        else:
            with response:  # closed unread
                if 300 <= response.status_code < 400:
                    failure = _redirect_failure(self.webhook_url, response)
                elif response.status_code >= 400:
                    failure = f"HTTP {response.status_code}"
        if failure:
            raise DeliveryError(f"{WEBHOOK} {host}: {failure}")

    def _tls_context(self) -> ssl.SSLContext:
        # Verifies the certificate chain and the host name.
        return ssl.create_default_context(cafile=self.smtp_ca_file or None)

    def _send_mail(self, subject: str, body: str) -> None:
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = self.mail_from
        message["To"] = ", ".join(a.strip() for a in self.mail_to.split(",") if a.strip())
        message.set_content(body)
        host = self.smtp_host
        failure = None
        try:
            self._smtp_session(message)
        except DeliveryError:
            raise
        except ssl.SSLCertVerificationError as exc:
            failure = f"certificate verify failed ({exc.verify_message})"
        except (smtplib.SMTPException, OSError) as exc:
            failure = f"{type(exc).__name__}: {exc}"
        if failure:
            raise DeliveryError(f"{EMAIL} {host}: {failure}")

    def _smtp_session(self, message: EmailMessage) -> None:
        host, port, timeout = self.smtp_host, self.smtp_port, self.timeout_seconds
        if self.smtp_ssl:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=self._tls_context()
            )
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            secure = self.smtp_ssl
            if not secure:
                smtp.ehlo()
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=self._tls_context())
                    smtp.ehlo()
                    secure = True
            if not secure and self.smtp_username:
                raise DeliveryError(
                    f"SMTP host {host} offers no TLS; refusing to send the password in clear"
                )
            if not secure and smtp_tls_required(host, self.smtp_require_tls):
                if self.smtp_require_tls:
                    raise DeliveryError(
                        f"SMTP host {host} offers no TLS, which {REQUIRE_TLS_ENV} requires"
                    )
                raise DeliveryError(
                    f"SMTP host {host} offers no TLS, which is required for any host but "
                    f"loopback; {REQUIRE_TLS_ENV}=false allows mail in clear"
                )
            if self.smtp_username:
                smtp.login(self.smtp_username, self.smtp_password)
            smtp.send_message(message)
