"""How services run: settings, logging, bus and database connections, the outbox relay,
the embedded servers, the supervisor and the `sre-copilot` CLI."""
