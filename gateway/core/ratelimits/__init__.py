"""Rate limits: token buckets per account, name, registered domain, EST requester and IP.

``bucket`` holds the arithmetic (shared by the store and the in-memory buckets),
``settings`` the ``[rate_limits]`` configuration, ``domains`` the registered
domain of a name (Public Suffix List) and ``limiter`` the service the core calls.
The package's own import is empty so that the store may import ``bucket``.
"""
