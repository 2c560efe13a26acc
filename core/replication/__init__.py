"""Logical replication for CDC: setup, readiness checks, the DMS hand-off, and the tail that
writes a capture."""
