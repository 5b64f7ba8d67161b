from __future__ import annotations

from pydantic import Field, SecretStr

from runtime.settings import ServiceSettings


class OncallSettings(ServiceSettings):
    # How far ahead "the next N shifts" look (a schedule with one person has one shift that long).
    shifts_horizon_days: int = Field(default=366, ge=1, le=3_660)
    # Calendar feeds: the shifts of the last week and of this many days ahead.
    calendar_days: int = Field(default=60, ge=1, le=366)
    # Where notifications link to: the incident, and the acknowledge link (the gateway's address).
    public_base_url: str = "http://127.0.0.1:8000"
    # How often a replica looks for due escalation steps and notifications another replica stored or
    # a crash left behind (it also wakes up at once for its own).
    escalation_poll_seconds: float = Field(default=1.0, gt=0)
    # The acknowledge link of a page works once, for this long.
    ack_link_ttl_seconds: int = Field(default=86_400, ge=60)
    # Signs acknowledge links (all replicas share it). Unset: one is generated once and kept in the
    # database.
    ack_signing_key: SecretStr | None = None
    # Sending one notification: a deadline per attempt, attempts before it is failed.
    notify_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    notify_max_attempts: int = Field(default=3, ge=1, le=20)
    # Webhook contact methods may point at loopback or private addresses (tests, on-premises gateways).
    notify_allow_private_targets: bool = False
    # Email over SMTP.
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65_535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_from: str = "sre-copilot@localhost"
    # Slack DMs through a bot token (chat.postMessage; scope chat:write).
    slack_bot_token: SecretStr | None = None
    # The same Slack app's signing secret: with it, a page's DM has an interactive Acknowledge button
    # (the app's Interactivity request URL is the gateway's /api/v1/integrations/slack/actions), and
    # clicks are verified with it. Unset: the button opens the signed acknowledge link.
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api"
    # Escalations stopped longer ago than this are deleted with their pages and notifications (the
    # incident's timeline keeps their events); an incident created before it starts no escalation.
    escalation_retention_days: float = Field(default=90.0, gt=0)
