"""Leak response: findings → broker reports → incidents → alert sinks (DESIGN.md "The loop")."""
