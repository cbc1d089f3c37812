"""``acme-gateway serve --workers N``: refused where the store cannot be shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import cli, config


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "gw.toml"
    path.write_text(f'[server]\ndata_dir = "{tmp_path}"\n')
    return path


def test_several_workers_on_sqlite_are_refused_with_the_reason(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli.main(["--config", str(_config(tmp_path)), "serve", "--workers", "2"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "--workers 2 is refused with the SQLite store" in err
    assert "badNonce" in err and "--workers 1" in err


def test_zero_workers_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--config", str(_config(tmp_path)), "serve", "--workers", "0"])
    assert exc.value.code == 2


def test_one_worker_is_always_allowed(tmp_path: Path) -> None:
    settings = config.load(_config(tmp_path))
    assert cli.workers_refusal(settings, 1) is None
    assert cli.workers_refusal(settings, 3) is not None
