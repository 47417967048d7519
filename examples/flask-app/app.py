"""The hoist example app: a small Flask app deployed by hoist in its tests, demo and benchmark.

Entry point `app:app` (gunicorn). Routes:
  GET  /health   200 "ok" (hoist's health check)
  GET  /         the greeting from instance/settings.toml
  GET  /version  {"release": ..., "commit": ...} from RELEASE.json, written by hoist
  GET  /notes    all notes, as JSON
  POST /notes    add a note: JSON {"text": "..."} or a form field text
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from flask import Flask, jsonify, request

from notes import MAX_NOTE_LENGTH, open_store
from settings import load_settings

# The directory of this file. When hoist runs the app this is the release directory, where
# hoist writes RELEASE.json and links the shared instance/settings.toml.
APP_DIR = Path(__file__).resolve().parent

# What /version reports when there is no RELEASE.json: a checkout run by hand, not a release.
DEV = "dev"


def create_app(app_dir: Path = APP_DIR, database_url: str | None = None) -> Flask:
    """Build the app for the code in `app_dir`.

    Settings are read now, once: a broken settings file fails the start (and so hoist's health
    check) instead of the first request. `database_url` defaults to the DATABASE_URL variable.
    """
    settings = load_settings(app_dir)
    if database_url is None:
        database_url = os.environ.get("DATABASE_URL") or None
    store = open_store(app_dir, settings.sqlite_path, database_url)

    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    app.config["NOTES"] = store

    @app.get("/health")
    def health():
        return "ok", 200, {"Content-Type": "text/plain; charset=utf-8"}

    @app.get("/")
    def greeting():
        return f"{settings.greeting}\n", 200, {"Content-Type": "text/plain; charset=utf-8"}

    @app.get("/version")
    def version():
        # Read on every request: the file is tiny, and reading it late means the answer is the
        # release this process really runs from, whatever happened since it started.
        release = read_release(app_dir)
        return jsonify(release=release["id"], commit=release["commit"])

    @app.get("/notes")
    def list_notes():
        return jsonify(notes=[note.to_json() for note in store.all()])

    @app.post("/notes")
    def add_note():
        body = request.get_json(silent=True) if request.is_json else request.form
        text = (body or {}).get("text")
        if not isinstance(text, str) or not text.strip():
            return jsonify(error='a note needs a non-empty "text" field'), 400
        text = text.strip()
        if len(text) > MAX_NOTE_LENGTH:
            return (
                jsonify(
                    error=f"a note is at most {MAX_NOTE_LENGTH} characters, this one is {len(text)}"
                ),
                400,
            )
        return jsonify(store.add(text).to_json()), 201

    return app


def read_release(app_dir: Path) -> dict:
    """The id and commit from `app_dir/RELEASE.json`, or "dev" for both when it is absent."""
    path = app_dir / "RELEASE.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {"id": DEV, "commit": DEV}
    return {"id": data.get("id", DEV), "commit": data.get("commit")}


app = create_app()
