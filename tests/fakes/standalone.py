"""Running a CA simulator by hand: ``python -m tests.fakes.certsrv`` / ``tests.fakes.ejbca``."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any


def parser(
    doc: str | None, port: int, workdir: str, modes: tuple[str, ...]
) -> argparse.ArgumentParser:
    """The options every simulator takes: port, mode and where its files go."""
    p = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--port", type=int, default=port, help="listen on 127.0.0.1:PORT")
    p.add_argument("--mode", choices=modes, default=modes[0])
    p.add_argument("--dir", default=workdir, help="where the CA, trust and credential files go")
    return p


def run(
    args: argparse.Namespace, serve: Callable[[argparse.Namespace], Coroutine[Any, Any, str]]
) -> None:
    """Create the work directory, start ``serve`` (which prints how to use it) and wait for ^C."""
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    args.dir = str(Path(args.dir).resolve())  # the printed settings must work from anywhere

    async def forever() -> None:
        print(await serve(args), flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(forever())
    except KeyboardInterrupt:
        pass
