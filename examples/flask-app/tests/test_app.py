"""The example app's routes, as a client of the app sees them."""

import pytest
from conftest import APP_SOURCE, write_release, write_settings

from app import create_app
from notes import MAX_NOTE_LENGTH
from settings import DEFAULT_GREETING, SettingsError


def test_health_answers_ok(sqlite_client):
    response = sqlite_client.get("/health")
    assert response.status_code == 200
    assert response.text == "ok"


def test_greeting_comes_from_the_settings_file(app_dir):
    write_settings(app_dir, 'greeting = "Hello from the shared config"\n')
    response = create_app(app_dir, database_url="").test_client().get("/")
    assert response.status_code == 200
    assert response.text == "Hello from the shared config\n"


def test_greeting_falls_back_to_the_default_without_a_settings_file(sqlite_client):
    assert sqlite_client.get("/").text == f"{DEFAULT_GREETING}\n"


def test_the_example_settings_file_is_valid_and_matches_the_defaults(app_dir):
    example = APP_SOURCE / "instance" / "settings.example.toml"
    write_settings(app_dir, example.read_text())
    assert create_app(app_dir, database_url="").test_client().get("/").text == f"{DEFAULT_GREETING}\n"


def test_an_unknown_settings_key_stops_the_start_and_names_the_file(app_dir):
    write_settings(app_dir, 'greting = "typo"\n')
    with pytest.raises(SettingsError) as error:
        create_app(app_dir, database_url="")
    message = str(error.value)
    assert str(app_dir / "instance" / "settings.toml") in message
    assert "unknown key 'greting'; expected one of greeting, sqlite_path" in message


def test_invalid_toml_stops_the_start_and_points_at_the_example(app_dir):
    write_settings(app_dir, "greeting = \n")
    with pytest.raises(SettingsError, match="not valid TOML .*instance/settings.example.toml"):
        create_app(app_dir, database_url="")


def test_version_reports_the_release_written_by_hoist(app_dir):
    write_release(app_dir, id="20250101T120000Z-1", commit="0123abc", branch="main", state="active")
    response = create_app(app_dir, database_url="").test_client().get("/version")
    assert response.status_code == 200
    assert response.get_json() == {"release": "20250101T120000Z-1", "commit": "0123abc"}


def test_version_is_dev_without_release_json(sqlite_client):
    assert sqlite_client.get("/version").get_json() == {"release": "dev", "commit": "dev"}


def test_version_follows_release_json_written_after_start(app_dir, sqlite_client):
    # sqlite_client was built on app_dir before the file existed.
    write_release(app_dir, id="r2", commit="fedcba9")
    assert sqlite_client.get("/version").get_json() == {"release": "r2", "commit": "fedcba9"}


def test_notes_are_stored_in_a_sqlite_file_under_instance(app_dir, sqlite_client):
    assert sqlite_client.get("/notes").get_json() == {"notes": []}

    created = sqlite_client.post("/notes", json={"text": "  first note  "})
    assert created.status_code == 201
    assert created.get_json()["text"] == "first note"
    sqlite_client.post("/notes", data={"text": "second note"})

    texts = [n["text"] for n in sqlite_client.get("/notes").get_json()["notes"]]
    assert texts == ["first note", "second note"]
    assert (app_dir / "instance" / "notes.sqlite3").is_file()

    # A new process on the same directory (a restart) sees the same notes.
    again = create_app(app_dir, database_url="").test_client()
    assert [n["text"] for n in again.get("/notes").get_json()["notes"]] == texts


def test_sqlite_path_from_settings_is_used(app_dir, tmp_path_factory):
    shared = tmp_path_factory.mktemp("shared")
    write_settings(app_dir, f'sqlite_path = "{shared / "notes.sqlite3"}"\n')
    client = create_app(app_dir, database_url="").test_client()
    assert client.post("/notes", json={"text": "kept across releases"}).status_code == 201
    assert (shared / "notes.sqlite3").is_file()
    assert not (app_dir / "instance" / "notes.sqlite3").exists()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, 'a note needs a non-empty "text" field'),
        ({"text": "   "}, 'a note needs a non-empty "text" field'),
        ({"text": 42}, 'a note needs a non-empty "text" field'),
        (
            {"text": "x" * (MAX_NOTE_LENGTH + 1)},
            f"a note is at most {MAX_NOTE_LENGTH} characters, this one is {MAX_NOTE_LENGTH + 1}",
        ),
    ],
)
def test_invalid_notes_are_refused_and_not_stored(sqlite_client, body, error):
    response = sqlite_client.post("/notes", json=body)
    assert response.status_code == 400
    assert response.get_json() == {"error": error}
    assert sqlite_client.get("/notes").get_json() == {"notes": []}
