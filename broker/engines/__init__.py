"""Secret engines: small protocols that issue and revoke one kind of credential (see ``base``)."""
