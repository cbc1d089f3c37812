"""The admin HTTP API: pending approvals, approve, reject (bearer-token authenticated)."""
