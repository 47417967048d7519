"""The notes against a real PostgreSQL, when DATABASE_URL names one."""

import os
import uuid

import pytest

from app import create_app
from conftest import unavailable

DATABASE_URL = os.environ.get("DATABASE_URL")



@pytest.fixture(autouse=True)
def _needs_postgresql():
    if not DATABASE_URL:
        unavailable(
            "DATABASE_URL is not set: export it (postgresql://user@127.0.0.1:PORT/db), or run "
            "scripts/test-example, which starts a throwaway PostgreSQL with initdb (install "
            "postgresql: scripts/install-deps does)"
        )


def test_notes_are_stored_in_postgresql(app_dir):
    import psycopg

    app = create_app(app_dir, database_url=DATABASE_URL)
    assert app.config["NOTES"].backend == "postgresql"
    client = app.test_client()
    text = f"note {uuid.uuid4()}"

    created = client.post("/notes", json={"text": text})
    assert created.status_code == 201
    assert text in [n["text"] for n in client.get("/notes").get_json()["notes"]]

    # Read it back without the app: the row is really in PostgreSQL, not in a SQLite file.
    with psycopg.connect(DATABASE_URL) as db:
        rows = db.execute("SELECT id FROM notes WHERE text = %s", (text,)).fetchall()
    assert rows == [(created.get_json()["id"],)]
    assert not (app_dir / "instance" / "notes.sqlite3").exists()
