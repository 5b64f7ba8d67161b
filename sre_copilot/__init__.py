"""The composition: the `sre-copilot` command and what it runs above the services (the supervisor
and its local cluster of embedded servers, code reload, migrations of every schema, the MCP bridge).
It may import every service; the services and runtime/ never import it."""
