"""Settings of the example app, read once at start from instance/settings.toml.

In a hoist deployment instance/settings.toml is a shared file: it lives in <root>/shared/ and is
linked into every release. The repository carries instance/settings.example.toml only, so a
fresh checkout (or a server where nobody has written the file yet) runs with the defaults below.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_GREETING = "Hello from the hoist example app"
DEFAULT_SQLITE_PATH = "instance/notes.sqlite3"

# Relative to the app's directory, which is the release directory when hoist runs the app.
SETTINGS_FILE = Path("instance") / "settings.toml"


class SettingsError(Exception):
    """The settings file exists but cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class Settings:
    """What the app reads from instance/settings.toml, with defaults for every key."""

    greeting: str = DEFAULT_GREETING
    sqlite_path: str = DEFAULT_SQLITE_PATH
    # Where the values came from, shown in errors and by bin/migrate.
    source: str = "defaults (no instance/settings.toml)"


def load_settings(app_dir: Path) -> Settings:
    """Read `app_dir/instance/settings.toml`, or return the defaults when it does not exist.

    Unknown keys and wrong types are errors rather than being ignored: a typo in a shared config
    file should stop the new release before hoist switches to it, not change behaviour silently.
    """
    path = app_dir / SETTINGS_FILE
    if not path.exists():
        return Settings()
    try:
        with path.open("rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(
            f"{path}: not valid TOML ({e}); fix it or start again from "
            f"instance/settings.example.toml"
        ) from e

    known = {"greeting", "sqlite_path"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SettingsError(
            f"{path}: unknown key {unknown[0]!r}; expected one of {', '.join(sorted(known))}"
        )
    for key, value in raw.items():
        if not isinstance(value, str) or not value.strip():
            raise SettingsError(f"{path}: {key} must be a non-empty string, found {value!r}")

    return Settings(
        greeting=raw.get("greeting", DEFAULT_GREETING),
        sqlite_path=raw.get("sqlite_path", DEFAULT_SQLITE_PATH),
        source=str(path),
    )
