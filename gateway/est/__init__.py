"""EST front end (RFC 7030, RFC 8951) under /.well-known/est/: see ``routes`` and docs/est.md."""
