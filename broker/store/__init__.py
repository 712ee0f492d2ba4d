"""Where the broker keeps tasks, leases and the audit chain (see ``base`` for the contract)."""
