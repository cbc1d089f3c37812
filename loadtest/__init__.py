"""Async ACME (RFC 8555) and EST (RFC 7030) load generator: ``python -m loadtest --help``."""
