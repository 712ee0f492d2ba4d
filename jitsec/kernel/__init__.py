"""The kernel: records, ports and the credential format that every layer may import.

It imports nothing else of jitsec, so detection, connectors, response, the broker and the CLI can all
depend on it without depending on each other.
"""
