"""Alembic migrations: one PostgreSQL schema per service, one history for the platform."""
