"""The broker's HTTP API: one router module per area, assembled by ``app.create_app``."""
