"""One module per family of CLI commands; ``jitsec.cli`` loads each only when it is invoked."""
