"""Where bytes come from (sources) and where alerts go (sinks). Connectors never match."""
