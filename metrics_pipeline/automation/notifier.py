"""Where alerts go: a generic webhook (Slack- and Discord-compatible JSON) and SMTP mail.

Configured from the environment; with nothing configured nothing is sent.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import requests
from dagster import ConfigurableResource
from pydantic import Field


class AlertNotifier(ConfigurableResource):
    webhook_url: str = Field(default="", description="METRICS_ALERT_WEBHOOK_URL")
    smtp_host: str = Field(default="", description="METRICS_ALERT_SMTP_HOST")
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_username: str = ""
    smtp_password: str = Field(default="", description="METRICS_ALERT_SMTP_PASSWORD (secret)")
    mail_from: str = "metrics-pipeline@localhost"
    mail_to: str = Field(default="", description="Comma-separated recipients")
    timeout_seconds: float = 10.0

    @property
    def enabled(self) -> bool:
        return bool(self.webhook_url or (self.smtp_host and self.mail_to))

    def send(self, subject: str, body: str) -> list[str]:
        """Deliver to every configured channel; returns the channels that took it."""
        delivered = []
        if self.webhook_url:
            text = f"*{subject}*\n{body}"
            # `text` for Slack and most webhooks, `content` (2,000 characters) for Discord.
            response = requests.post(
                self.webhook_url,
                json={"text": text, "content": text[:2000]},
                timeout=self.timeout_seconds,
            )
            response.raise_for_status()
            delivered.append("webhook")
        if self.smtp_host and self.mail_to:
            message = EmailMessage()
            message["Subject"] = subject
            message["From"] = self.mail_from
            message["To"] = ", ".join(a.strip() for a in self.mail_to.split(",") if a.strip())
            message.set_content(body)
            with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.timeout_seconds) as smtp:
                if self.smtp_starttls:
                    smtp.starttls()
                if self.smtp_username:
                    smtp.login(self.smtp_username, self.smtp_password)
                smtp.send_message(message)
            delivered.append("email")
        return delivered
