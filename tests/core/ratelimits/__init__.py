"""Tests of gateway.core.ratelimits."""
