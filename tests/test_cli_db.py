"""``acme-gateway db migrate`` on both stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from gateway.storage import pg_schema


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
