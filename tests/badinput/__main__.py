"""``python -m tests.badinput --cases N --seed S``: a long bad-input run, with a report.

Exit status 1 if any case of the ``main`` or ``parser`` group failed; failures of
the ``transport`` group (404/405/413/415 answers) are listed but do not count
unless ``--strict-transport`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from pathlib import Path

from tests.badinput.case import MAIN, PARSER, TRANSPORT
from tests.badinput.runner import run, still_serving
from tests.badinput.session import battery_target


async def _main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        async with battery_target(Path(tmp)) as (session, target):
            report = await run(session, target, args.seed, args.cases, args.lanes,
                               (MAIN, PARSER, TRANSPORT))
            await still_serving(session, target)
    print(f"seed {args.seed}, {args.lanes} lanes")
    print(report.summary())
    counted = report.failed(MAIN) + report.failed(PARSER)
    if args.strict_transport:
        counted += report.failed(TRANSPORT)
    return 1 if counted else 0


def main() -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(prog="python -m tests.badinput", description=__doc__)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lanes", type=int, default=4)
    parser.add_argument("--strict-transport", action="store_true")
    args = parser.parse_args()
    # Refused requests are expected by the thousand; only errors matter here.
    logging.basicConfig(level=logging.ERROR)
    # aiohttp's parser logs each request it cannot parse; the raw cases send thousands.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    sys.exit(asyncio.run(_main(args)))


if __name__ == "__main__":
    main()
