"""Storage for /notes: PostgreSQL when DATABASE_URL is set, else a SQLite file.

Both stores open one connection per call. The app is tiny and gunicorn runs a few workers, so a
pool would add state to reason about across restarts without saving anything measurable.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

MAX_NOTE_LENGTH = 280


@dataclass(frozen=True)
class Note:
    """One stored note, as returned by the API."""

    id: int
    text: str
    created_at: str

    def to_json(self) -> dict:
        return {"id": self.id, "text": self.text, "created_at": self.created_at}


class NoteStore(Protocol):
    """What the routes need from a database."""

    backend: str

    def ensure_table(self) -> None: ...

    def add(self, text: str) -> Note: ...

    def all(self) -> list[Note]: ...


class SqliteNotes:
    """Notes in a SQLite file; the table is created on first use."""

    backend = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return sqlite3.connect(self.path)

    def ensure_table(self) -> None:
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS notes ("
                " id INTEGER PRIMARY KEY AUTOINCREMENT,"
                " text TEXT NOT NULL,"
                " created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')))"
            )
        self._ready = True

    def add(self, text: str) -> Note:
        if not self._ready:
            self.ensure_table()
        with self._connect() as db:
            row = db.execute(
                "INSERT INTO notes (text) VALUES (?) RETURNING id, text, created_at", (text,)
            ).fetchone()
        return Note(*row)

    def all(self) -> list[Note]:
        if not self._ready:
            self.ensure_table()
        with self._connect() as db:
            rows = db.execute("SELECT id, text, created_at FROM notes ORDER BY id").fetchall()
        return [Note(*row) for row in rows]


class PostgresNotes:
    """Notes in PostgreSQL through psycopg 3; the table is created on first use."""

    backend = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self._ready = False

    def _connect(self):
        # Imported here so that the SQLite-only path (tests, a laptop) never needs libpq.
        import psycopg

        return psycopg.connect(self.url)

    def ensure_table(self) -> None:
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS notes ("
                " id BIGSERIAL PRIMARY KEY,"
                " text TEXT NOT NULL,"
                " created_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
        self._ready = True

    def add(self, text: str) -> Note:
        if not self._ready:
            self.ensure_table()
        with self._connect() as db:
            row = db.execute(
                "INSERT INTO notes (text) VALUES (%s) RETURNING id, text, created_at", (text,)
            ).fetchone()
        return _pg_note(row)

    def all(self) -> list[Note]:
        if not self._ready:
            self.ensure_table()
        with self._connect() as db:
            rows = db.execute("SELECT id, text, created_at FROM notes ORDER BY id").fetchall()
        return [_pg_note(row) for row in rows]


def _pg_note(row) -> Note:
    id_, text, created_at = row
    return Note(id_, text, created_at.isoformat())


def open_store(app_dir: Path, sqlite_path: str, database_url: str | None) -> NoteStore:
    """PostgreSQL when `database_url` is set, else SQLite at `sqlite_path` (relative to app_dir)."""
    if database_url:
        return PostgresNotes(database_url)
    path = Path(sqlite_path)
    if not path.is_absolute():
        path = app_dir / path
    return SqliteNotes(path)
