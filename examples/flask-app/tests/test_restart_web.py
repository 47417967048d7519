"""bin/restart-web and bin/stop-web, run as hoist runs them, on a release directory of our own.

These start real gunicorn processes on a free 127.0.0.1 port, from the virtualenv that runs the
tests (it has gunicorn: requirements-dev.txt includes requirements.txt).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import APP_SOURCE, unavailable

VENV_GUNICORN = Path(sys.prefix) / "bin" / "gunicorn"



@pytest.fixture(autouse=True)
def _needs_gunicorn():
    if not VENV_GUNICORN.exists():
        unavailable(
            f"{VENV_GUNICORN} not found: run the tests from a virtualenv with requirements-dev.txt "
            "installed (pip install -r requirements-dev.txt; scripts/test-example makes one)"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


class Deployment:
    """A deploy root with releases made by hand, the way hoist lays them out."""

    def __init__(self, root: Path, port: int):
        self.root = root
        self.port = port
        self.pid_file = root / "shared" / "run" / "gunicorn.pid"

    def make_release(self, release_id: str) -> Path:
        release = self.root / "releases" / release_id
        shutil.copytree(
            APP_SOURCE,
            release,
            ignore=shutil.ignore_patterns("tests", ".venv", "env", "__pycache__", "*.sqlite3", "settings.toml"),
        )
        (release / ".venv").symlink_to(sys.prefix)
        (release / "RELEASE.json").write_text(json.dumps({"id": release_id, "commit": "abc1234"}))
        return release

    def env(self, release: Path) -> dict:
        return {
            **os.environ,
            "HOIST_ROOT": str(self.root),
            "HOIST_RELEASE_PATH": str(release),
            "HOIST_RELEASE_ID": release.name,
            "HOIST_APP": "example",
            "HOIST_PORT": str(self.port),
        }

    def run(self, release: Path, script: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(release / "bin" / script)],
            cwd=release,
            env=self.env(release),
            capture_output=True,
            text=True,
            timeout=90,
        )

    def pid(self) -> int:
        return int(self.pid_file.read_text().strip())

    def get(self, path: str) -> tuple[int, str]:
        """GET a path, waiting (bounded) for gunicorn's workers to accept connections."""
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                    return r.status, r.read().decode()
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


@pytest.fixture
def deployment(tmp_path):
    deployment = Deployment(tmp_path / "root", free_port())
    yield deployment
    # Never leave a gunicorn behind, whatever the test did: stop it as the demo does (the
    # workers go with the master), and KILL only if that failed.
    if deployment.pid_file.exists():
        pid = deployment.pid()
        subprocess.run(
            [str(APP_SOURCE / "bin" / "stop-web")],
            env={**os.environ, "HOIST_ROOT": str(deployment.root)},
            capture_output=True,
            timeout=60,
        )
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_restart_serves_the_new_release_and_stops_the_old_one(deployment):
    first = deployment.make_release("r1")
    started = deployment.run(first, "restart-web")
    assert started.returncode == 0, started.stderr
    assert "stop-web: not running" in started.stdout
    first_pid = deployment.pid()
    assert deployment.get("/health") == (200, "ok")
    assert json.loads(deployment.get("/version")[1]) == {"release": "r1", "commit": "abc1234"}

    second = deployment.make_release("r2")
    restarted = deployment.run(second, "restart-web")
    assert restarted.returncode == 0, restarted.stderr
    assert f"stop-web: stopped gunicorn {first_pid}" in restarted.stdout
    assert not alive(first_pid)
    assert deployment.pid() != first_pid
    assert json.loads(deployment.get("/version")[1]) == {"release": "r2", "commit": "abc1234"}

    logs = deployment.root / "shared" / "logs"
    assert (logs / "gunicorn-access.log").is_file()
    assert (logs / "gunicorn-error.log").is_file()


def test_gunicorn_runs_from_the_resolved_release_path_not_current(deployment):
    release = deployment.make_release("r1")
    current = deployment.root / "current"
    current.symlink_to(release)
    # As if hoist had passed the unresolved path: the script resolves it itself.
    env = deployment.env(current)
    result = subprocess.run(
        [str(release / "bin" / "restart-web")], cwd=release, env=env, capture_output=True, text=True, timeout=90
    )
    assert result.returncode == 0, result.stderr
    cmdline = Path(f"/proc/{deployment.pid()}/cmdline").read_bytes().split(b"\0")
    assert b"--chdir" in cmdline
    assert cmdline[cmdline.index(b"--chdir") + 1] == str(release).encode()


def test_stop_web_stops_and_removes_the_pid_file(deployment):
    release = deployment.make_release("r1")
    assert deployment.run(release, "restart-web").returncode == 0
    pid = deployment.pid()

    stopped = deployment.run(release, "stop-web")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.strip().endswith(f"stop-web: stopped gunicorn {pid}")
    assert not alive(pid)
    assert not deployment.pid_file.exists()

    again = deployment.run(release, "stop-web")
    assert again.returncode == 0
    assert again.stdout.strip() == f"stop-web: not running (no {deployment.pid_file})"


def test_stop_web_never_signals_a_process_that_is_not_gunicorn(deployment):
    release = deployment.make_release("r1")
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        deployment.pid_file.parent.mkdir(parents=True)
        deployment.pid_file.write_text(f"{bystander.pid}\n")
        result = deployment.run(release, "stop-web")
        assert result.returncode == 0, result.stderr
        assert "removing stale" in result.stdout
        assert bystander.poll() is None
        assert not deployment.pid_file.exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_restart_fails_clearly_without_a_virtualenv(deployment):
    release = deployment.make_release("r1")
    (release / ".venv").unlink()
    result = deployment.run(release, "restart-web")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"restart-web: {release}/.venv/bin/gunicorn not found; "
        "the release's .venv must provide gunicorn (is it in requirements.txt?)"
    )
    assert not deployment.pid_file.exists()


def test_restart_fails_clearly_when_hoist_variables_are_missing(deployment):
    release = deployment.make_release("r1")
    env = {k: v for k, v in deployment.env(release).items() if k != "HOIST_ROOT"}
    result = subprocess.run(
        [str(release / "bin" / "restart-web")], cwd=release, env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode != 0
    assert "HOIST_ROOT is not set" in result.stderr


def test_restart_uses_env_of_a_build_deployed_the_seed_way(deployment):
    """A build of the seed's Ansible layout keeps its virtualenv in env/; hoist adopts it as is."""
    release = deployment.make_release("r1")
    (release / ".venv").rename(release / "env")
    result = deployment.run(release, "restart-web")
    assert result.returncode == 0, result.stderr
    assert deployment.pid_file.exists()
