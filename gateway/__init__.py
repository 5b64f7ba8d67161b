"""gateway: the only HTTP face of the platform. Verifies tokens, sends commands, serves reads from
its own read models, which it projects from the event stream."""
