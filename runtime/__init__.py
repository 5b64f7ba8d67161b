"""The plumbing every service stands on: settings, logging, bus and database connections, the outbox
relay, the one event consumer, dead letters, metrics and tracing. It imports contracts/ and libraries,
never a service (the composition above the services is sre_copilot/)."""
