"""Tests of the load generator (loadtest/)."""
