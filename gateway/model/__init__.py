"""The model every layer shares: records, identifiers, statuses and their moves, the
clock, the Store protocol and its operations, rate-limit buckets, change counters.

It imports nothing of the gateway but :mod:`gateway.errors` (and small value
helpers such as :mod:`gateway.jsontext`), so front ends, the core and storage
can all import it without importing each other.
"""
