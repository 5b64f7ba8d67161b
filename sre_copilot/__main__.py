"""`python -m sre_copilot`: the `sre-copilot` command."""

from sre_copilot.cli import app

app()
