"""integrations' pure rules, a module per feature: alerts (reading Alertmanager alerts, what each
alert of a notification does to the group's incidents), pagerduty, json_mapping, silences,
correlation (rules and their preview), deliveries (backing off, giving up, webhook targets, what an
attempt does to a delivery), messages (Slack, Teams, Mattermost, Discord) and deploys. No I/O:
unit-tested in tests/unit. Callers use them all as `integrations.domain.<name>`."""

# ruff: noqa: F403
from integrations.domain.alerts import *
from integrations.domain.correlation import *
from integrations.domain.deliveries import *
from integrations.domain.deploys import *
from integrations.domain.json_mapping import *
from integrations.domain.messages import *
from integrations.domain.pagerduty import *
from integrations.domain.silences import *
