-- hoist-store schema, SQLite flavour. Times are milliseconds since the Unix epoch (UTC), the same
-- on both backends, so that comparisons (stale heartbeats) are exact integer comparisons.

CREATE TABLE projects (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE runs (
    id            INTEGER PRIMARY KEY,
    project_id    INTEGER NOT NULL REFERENCES projects(id),
    branch        TEXT NOT NULL,
    commit_sha    TEXT NOT NULL,
    message       TEXT NOT NULL,
    author        TEXT NOT NULL,
    trigger_kind  TEXT NOT NULL CHECK (trigger_kind IN ('webhook', 'poll', 'manual', 'rerun')),
    triggered_by  TEXT NOT NULL,
    rerun_of      INTEGER REFERENCES runs(id),
    status        TEXT NOT NULL CHECK (status IN ('queued', 'running', 'passed', 'failed', 'cancelled', 'interrupted')),
    queued_at     INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER,
    runner_id     TEXT,
    heartbeat_at  INTEGER,
    cancelled_by  TEXT,
    log_seq       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_queue ON runs (status, id);
CREATE INDEX runs_project_branch ON runs (project_id, branch, id);

CREATE TABLE deliveries (
    id           INTEGER PRIMARY KEY,
    provider     TEXT NOT NULL,
    delivery_id  TEXT NOT NULL,
    project_id   INTEGER NOT NULL REFERENCES projects(id),
    run_id       INTEGER REFERENCES runs(id),
    received_at  INTEGER NOT NULL,
    UNIQUE (provider, delivery_id)
);

CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY,
    run_id       INTEGER NOT NULL REFERENCES runs(id),
    name         TEXT NOT NULL,
    position     INTEGER NOT NULL,
    requires     TEXT NOT NULL,
    status       TEXT NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    UNIQUE (run_id, name)
);

CREATE TABLE steps (
    id           INTEGER PRIMARY KEY,
    job_id       INTEGER NOT NULL REFERENCES jobs(id),
    name         TEXT NOT NULL,
    position     INTEGER NOT NULL,
    status       TEXT NOT NULL,
    exit_code    INTEGER,
    duration_ms  INTEGER,
    started_at   INTEGER,
    UNIQUE (job_id, position)
);

CREATE TABLE log_lines (
    run_id   INTEGER NOT NULL REFERENCES runs(id),
    seq      INTEGER NOT NULL,
    step_id  INTEGER REFERENCES steps(id),
    at       INTEGER NOT NULL,
    text     TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE test_suites (
    id           INTEGER PRIMARY KEY,
    run_id       INTEGER NOT NULL REFERENCES runs(id),
    step_id      INTEGER REFERENCES steps(id),
    name         TEXT NOT NULL,
    tests        INTEGER NOT NULL,
    failures     INTEGER NOT NULL,
    errors       INTEGER NOT NULL,
    skipped      INTEGER NOT NULL,
    duration_ms  INTEGER NOT NULL
);
CREATE INDEX test_suites_run ON test_suites (run_id);

CREATE TABLE test_cases (
    id           INTEGER PRIMARY KEY,
    suite_id     INTEGER NOT NULL REFERENCES test_suites(id),
    classname    TEXT NOT NULL,
    name         TEXT NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('passed', 'failed', 'error', 'skipped')),
    duration_ms  INTEGER NOT NULL,
    message      TEXT
);
CREATE INDEX test_cases_suite ON test_cases (suite_id);

CREATE TABLE artifacts (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES runs(id),
    name        TEXT NOT NULL,
    path        TEXT NOT NULL,
    size_bytes  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (run_id, name)
);

CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    role           TEXT NOT NULL CHECK (role IN ('viewer', 'deployer', 'admin')),
    password_hash  TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('viewer', 'deployer', 'admin')),
    token_sha256  TEXT NOT NULL UNIQUE,
    created_by    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
);

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    who     TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    detail  TEXT NOT NULL
);

CREATE TABLE deployments (
    id           INTEGER PRIMARY KEY,
    run_id       INTEGER REFERENCES runs(id),
    project_id   INTEGER NOT NULL REFERENCES projects(id),
    environment  TEXT NOT NULL,
    host         TEXT NOT NULL,
    release_id   TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    who          TEXT NOT NULL,
    at           INTEGER NOT NULL
);
CREATE INDEX deployments_project ON deployments (project_id, environment, id);
