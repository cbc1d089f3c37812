"""The bad-input battery: seeded generated requests against a served gateway.

Run in CI by ``test_battery.py`` (a few thousand cases); a longer run from the
command line: ``python -m tests.badinput --cases 100000 --seed 1``.
"""
