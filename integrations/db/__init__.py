"""integrations' tables (schema `integrations`) and queries, a module per feature: tables (and
the advisory-lock ids), common (what several queries share), inbound (settings, the inbound queue,
alert groups and alerts, pending auto-resolutions, refused payloads), activity (deploys, what a
service went through lately), incidents_view, webhooks (webhooks, deliveries and their claims, the
secrets' key), slack_links, rules (JSON sources, silences, correlation rules) and retention.
Callers use them all as `db.<name>`."""

# ruff: noqa: F403
from integrations.db.activity import *
from integrations.db.common import *
from integrations.db.inbound import *
from integrations.db.incidents_view import *
from integrations.db.retention import *
from integrations.db.rules import *
from integrations.db.slack_links import *
from integrations.db.tables import *
from integrations.db.webhooks import *
