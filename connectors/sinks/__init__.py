"""Alert sinks: where incidents go. Every sink but the console spools to disk (``spool.py``) so a
receiver that is down delays alerts, in order, and never loses or blocks them.

``build_sink("webhook:https://...", spool_dir)`` turns an ``--alert`` spec into a sink; see
``factory.py`` for the spec grammar. The incident's wire form is ``serialize.py``, imported by the
sinks that write it and not here: the hooks declare ``--alert`` on every commit and need only the
spec grammar.
"""

from jitsec.connectors.sinks.factory import ALERT_SPEC_HELP, build_sink, parse_alert_spec

__all__ = [
    "ALERT_SPEC_HELP",
    "build_sink",
    "parse_alert_spec",
]
