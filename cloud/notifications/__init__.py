"""Notifications: channels, templates, preferences and retry rules (the outbox plugs in on top)."""
