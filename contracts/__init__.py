"""Schemas shared by every service: the event envelope, events, commands and subjects. No I/O here."""
