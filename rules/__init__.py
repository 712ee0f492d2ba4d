"""The default rule packs: TOML data, one file per family, loaded through `importlib.resources`."""
