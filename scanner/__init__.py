"""The leak scanner: rules, matcher, entropy, fingerprints and findings. Never imports the broker."""
