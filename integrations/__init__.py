"""integrations: Alertmanager and deploy events in; Slack and signed webhooks out."""
