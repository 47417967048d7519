"""Shared fixtures: each test gets its own app directory, as hoist gives each release its own."""

import json
import os
import sys
from pathlib import Path

import pytest

APP_SOURCE = Path(__file__).resolve().parent.parent
# The app's modules (app, notes, settings) sit at the top of the app directory, as in a release.
sys.path.insert(0, str(APP_SOURCE))

from app import create_app  # noqa: E402


def in_ci() -> bool:
    """True under CI (CI=true, as CI services and `hoist ci` set it): there every test must run."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> None:
    """What a test does when a tool it needs is missing: skips here, fails in CI.

    `reason` names what is missing and how to get it; in CI a skipped test would be a test that
    passes without running, so the run fails instead.
    """
    if in_ci():
        pytest.fail(f"{reason} (CI is set: every test must run, none may skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def app_dir(tmp_path):
    """An empty app directory: no settings file, no RELEASE.json, SQLite under instance/."""
    (tmp_path / "instance").mkdir()
    return tmp_path


def write_settings(app_dir: Path, text: str) -> None:
    (app_dir / "instance" / "settings.toml").write_text(text)


def write_release(app_dir: Path, **fields) -> None:
    (app_dir / "RELEASE.json").write_text(json.dumps(fields))


@pytest.fixture
def sqlite_client(app_dir):
    """A test client on SQLite, even when DATABASE_URL is set ("" means: no PostgreSQL)."""
    return create_app(app_dir, database_url="").test_client()
