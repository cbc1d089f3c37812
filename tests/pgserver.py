"""A throw-away PostgreSQL server for tests: Debian's postgresql 15, run by the test session.

``initdb`` refuses to run as root, so when the tests run as root the cluster
directory is given to the ``postgres`` user and every server command runs as
it (``runuser``). The server listens on 127.0.0.1 on a free port and on a unix
socket in its own directory; fsync is off, since a test database is never
kept after a crash (the restart tests stop it cleanly). Each test gets a
fresh, empty database from :meth:`PostgresServer.new_database`.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
SUPERUSER = "postgres"


def available() -> str | None:
    """None when a server can be run here, else why not."""
    if not (BIN / "initdb").exists():
        return f"needs PostgreSQL 15 server programs in {BIN} (Debian package postgresql)"
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        return "needs asyncpg (pip install -e '.[postgres]')"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "needs runuser to run the server as the postgres user"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One cluster in a temporary directory, started and stopped by the caller."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="gw-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._names = itertools.count(1)
        if os.geteuid() == 0:
            shutil.chown(self.root, SUPERUSER, SUPERUSER)

    def _run(self, *cmd: str) -> None:
        prefix = ["runuser", "-u", SUPERUSER, "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *cmd], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed: {done.stderr or done.stdout}")

    def init(self) -> None:
        """Create the cluster (trust authentication, local connections only)."""
        self._run(str(BIN / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "-A", "trust",
                  "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                   f"-c unix_socket_directories={self.root} -c fsync=off "
                   "-c full_page_writes=off -c max_connections=300")
        self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60",
                  "-l", str(self.root / "server.log"), "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: disconnect clients, roll back, shut down cleanly)."""
        self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-w", "-m", mode, "stop")

    def url(self, database: str = "postgres") -> str:
        """A postgresql:// URL of a database on this server."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    async def new_database(self) -> str:
        """A fresh empty database; its URL."""
        import asyncpg

        name = f"gw_test_{os.getpid()}_{next(self._names)}"
        conn = await asyncpg.connect(self.url())
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        finally:
            await conn.close()
        return self.url(name)

    def destroy(self) -> None:
        """Stop the server if it runs, and remove the cluster."""
        try:
            self.stop("immediate")
        except RuntimeError:
            pass  # already stopped
        shutil.rmtree(self.root, ignore_errors=True)
