"""The just-in-time secrets broker. Never imports the scanner."""
