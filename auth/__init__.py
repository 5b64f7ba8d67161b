"""auth: organisations, people, passwords and access tokens."""
