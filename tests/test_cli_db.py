"""``db migrate`` on both stores; ``db prune [--dry-run]`` and ``db stats`` on a file."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway import cli, config
from gateway.app import build_store
from gateway.cli import main
from gateway.model.records import INVALID, Identifier, Order
from gateway.model.store import Insert
from gateway.storage import pg_schema


def old_and_new_orders(config_path: Path) -> None:
    """One order that expired long ago, one that expires next week."""
    now = datetime.now(UTC)

    def order(i: str, expires: datetime) -> Order:
        return Order(id=i, account_id="a1", status=INVALID,
                     identifiers=(Identifier("dns", "example.com"),), authz_ids=(),
                     expires=expires, profile="default", created_at=expires)

    async def seed() -> None:
        store = build_store(config.load(config_path))
        await store.open()
        try:
            await store.apply([Insert(order("old", now - timedelta(days=365))),
                               Insert(order("new", now + timedelta(days=7)))])
        finally:
            await store.close()

    asyncio.run(seed())


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n')
    old_and_new_orders(path)
    return path


def run(capsys: pytest.CaptureFixture[str], config_path: Path, *args: str) -> str:
    assert cli.main(["--config", str(config_path), "db", *args]) == 0
    return capsys.readouterr().out


def line(text: str, first_word: str) -> list[str]:
    return next(ln.split() for ln in text.splitlines() if ln.split()[0] == first_word)


def test_a_dry_run_counts_and_a_prune_removes(capsys: pytest.CaptureFixture[str],
                                              config_path: Path) -> None:
    assert line(run(capsys, config_path, "prune", "--dry-run"), "orders") == \
        ["orders", "would", "remove", "1"]
    assert line(run(capsys, config_path, "stats"), "orders")[1] == "2"
    assert line(run(capsys, config_path, "prune"), "orders") == ["orders", "removed", "1"]
    assert line(run(capsys, config_path, "prune"), "orders") == ["orders", "removed", "0"]
    stats = run(capsys, config_path, "stats")
    assert line(stats, "orders")[1] == "1"
    assert int(line(stats, "database")[1]) > 0


def test_db_needs_a_subcommand(capsys: pytest.CaptureFixture[str], config_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--config", str(config_path), "db"])
    assert exit_.value.code == 2
    assert "prune" in capsys.readouterr().err


@pytest.mark.external("postgres")
def test_db_migrate_command(postgres_url: str, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "gw.toml"
    cfg.write_text(f'[server]\ndata_dir = "{tmp_path}"\n[storage]\nurl = "{postgres_url}"\n')
    assert main(["--config", str(cfg), "db", "migrate"]) == 0
    assert main(["db", "migrate", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"schema migrated from version 0 to {pg_schema.LATEST}",
                   f"schema at version {pg_schema.LATEST}: nothing to do"]


def test_db_migrate_on_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "gw.toml"
    cfg.write_text(f'[server]\ndata_dir = "{tmp_path}"\n')
    assert main(["--config", str(cfg), "db", "migrate"]) == 0
    assert "from version 0 to" in capsys.readouterr().out
