"""Under CI (CI=true) a test whose tool is missing fails, naming what to install; elsewhere it
skips. Run on test_postgres.py without DATABASE_URL, in a pytest of its own."""

import os
import subprocess
import sys

from conftest import APP_SOURCE


def run_postgres_tests(ci: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "DATABASE_URL")}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests/test_postgres.py"],
        cwd=APP_SOURCE,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_in_ci_a_missing_database_fails_naming_what_to_install():
    out = run_postgres_tests("true")
    assert out.returncode != 0, out.stdout
    assert "DATABASE_URL is not set" in out.stdout, out.stdout
    assert "install postgresql" in out.stdout, out.stdout
    assert "CI is set: every test must run, none may skip" in out.stdout, out.stdout
    assert " skipped" not in out.stdout, out.stdout


def test_outside_ci_a_missing_database_skips_saying_why():
    out = run_postgres_tests(None)
    assert out.returncode == 0, out.stdout
    assert "1 skipped" in out.stdout, out.stdout
    assert "DATABASE_URL is not set" in out.stdout, out.stdout
