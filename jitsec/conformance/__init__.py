"""``jitsec conformance``: AG-304's test specification (8.1-8.7) run against a live deployment.

One module per test (``ttl``, ``completion``, ``scope``, ``uniqueness``, ``storage``, ``compromise``,
``leak``), the ``runner`` that runs them, the ``model`` of the evidence, ``maturity`` (section 6 and
the score) and ``report`` (Markdown, HTML, JSON). See docs/conformance.md.
"""
