"""The spool belongs to the database, not to a spelling of its URL nor to a working directory
(issue 14, bullet 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import article_item

from fxcrawl import cli
from storage.spool import Spool, spool_dir_for

POSTGRES_SPELLINGS = [
    "postgresql+psycopg://fxcrawl:secret@127.0.0.1:5432/news",
    "postgresql+psycopg://fxcrawl:another@localhost/news",
    "postgresql://someone@LOCALHOST:5432/news",
    "postgresql+psycopg://fxcrawl@[::1]:5432/news",
]


def test_every_spelling_of_one_postgresql_database_finds_one_spool(tmp_path: Path) -> None:
    folders = {spool_dir_for(tmp_path, url) for url in POSTGRES_SPELLINGS}
    assert len(folders) == 1
    (folder,) = folders
    assert folder.is_absolute() and "secret" not in str(folder) and "fxcrawl" not in folder.name
    others = {
        spool_dir_for(tmp_path, "postgresql+psycopg://fxcrawl@127.0.0.1:5433/news"),  # another server
        spool_dir_for(tmp_path, "postgresql+psycopg://fxcrawl@127.0.0.1:5432/other"),  # another database
        spool_dir_for(tmp_path, "postgresql+psycopg://fxcrawl@db.example:5432/news"),  # another host
    }
    assert folder not in others and len(others) == 3


def test_every_spelling_and_working_directory_of_one_sqlite_file_finds_one_spool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data" / "sub").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    relative = [
        spool_dir_for("spool", "sqlite:///data/fx.db"),
        spool_dir_for("spool", "sqlite:///data/sub/../fx.db?timeout=5"),
    ]
    monkeypatch.chdir(tmp_path / "data")
    absolute = [spool_dir_for(tmp_path / "spool", f"sqlite:///{tmp_path / 'data' / 'fx.db'}")]
    assert len({*relative, *absolute}) == 1
    assert relative[0].is_absolute() and relative[0].parent == tmp_path / "spool"
    # by default, beside the SQLite file, whichever directory asks
    assert spool_dir_for(None, "sqlite:///fx.db").parent == tmp_path / "data" / "spool"
    monkeypatch.chdir(tmp_path)
    assert spool_dir_for(None, "sqlite:///data/fx.db") == spool_dir_for(None, "sqlite:///data/fx.db")
    assert spool_dir_for(None, "sqlite:///data/fx.db").parent == tmp_path / "data" / "spool"


def test_spool_list_sees_what_another_spelling_spooled_from_another_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    Spool(spool_dir_for(tmp_path / "spool", POSTGRES_SPELLINGS[0])).write([article_item()], "test")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    code = cli.main(["spool", "list", "--db", POSTGRES_SPELLINGS[2], "--spool-dir", str(tmp_path / "spool")])
    assert code == 0
    assert capsys.readouterr().out.startswith("1 spool files, 1 items waiting")
