"""Benchmarks: scripts that print figures (throughput, latency, accuracy); never run as tests."""
