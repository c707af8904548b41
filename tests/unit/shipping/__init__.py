"""Unit tests: pure code, no server, no cluster."""
