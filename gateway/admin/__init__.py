"""The admin surface under /admin/: the JSON API (bearer token) and the web console (session)."""
