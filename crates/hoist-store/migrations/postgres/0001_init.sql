-- hoist-store schema, PostgreSQL flavour. Times are milliseconds since the Unix epoch (UTC), the same
-- on both backends, so that comparisons (stale heartbeats) are exact integer comparisons.

CREATE TABLE projects (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE runs (
    id            BIGSERIAL PRIMARY KEY,
    project_id    BIGINT NOT NULL REFERENCES projects(id),
    branch        TEXT NOT NULL,
    commit_sha    TEXT NOT NULL,
    message       TEXT NOT NULL,
    author        TEXT NOT NULL,
    trigger_kind  TEXT NOT NULL CHECK (trigger_kind IN ('webhook', 'poll', 'manual', 'rerun')),
    triggered_by  TEXT NOT NULL,
    rerun_of      BIGINT REFERENCES runs(id),
    status        TEXT NOT NULL CHECK (status IN ('queued', 'running', 'passed', 'failed', 'cancelled', 'interrupted')),
    queued_at     BIGINT NOT NULL,
    started_at    BIGINT,
    finished_at   BIGINT,
    runner_id     TEXT,
    heartbeat_at  BIGINT,
    cancelled_by  TEXT,
    log_seq       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX runs_queue ON runs (status, id);
CREATE INDEX runs_project_branch ON runs (project_id, branch, id);

CREATE TABLE deliveries (
    id           BIGSERIAL PRIMARY KEY,
    provider     TEXT NOT NULL,
    delivery_id  TEXT NOT NULL,
    project_id   BIGINT NOT NULL REFERENCES projects(id),
    run_id       BIGINT REFERENCES runs(id),
    received_at  BIGINT NOT NULL,
    UNIQUE (provider, delivery_id)
);

CREATE TABLE jobs (
    id           BIGSERIAL PRIMARY KEY,
    run_id       BIGINT NOT NULL REFERENCES runs(id),
    name         TEXT NOT NULL,
    position     BIGINT NOT NULL,
    requires     TEXT NOT NULL,
    status       TEXT NOT NULL,
    started_at   BIGINT,
    finished_at  BIGINT,
    UNIQUE (run_id, name)
);

CREATE TABLE steps (
    id           BIGSERIAL PRIMARY KEY,
    job_id       BIGINT NOT NULL REFERENCES jobs(id),
    name         TEXT NOT NULL,
    position     BIGINT NOT NULL,
    status       TEXT NOT NULL,
    exit_code    BIGINT,
    duration_ms  BIGINT,
    started_at   BIGINT,
    UNIQUE (job_id, position)
);

CREATE TABLE log_lines (
    run_id   BIGINT NOT NULL REFERENCES runs(id),
    seq      BIGINT NOT NULL,
    step_id  BIGINT REFERENCES steps(id),
    at       BIGINT NOT NULL,
    text     TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE test_suites (
    id           BIGSERIAL PRIMARY KEY,
    run_id       BIGINT NOT NULL REFERENCES runs(id),
    step_id      BIGINT REFERENCES steps(id),
    name         TEXT NOT NULL,
    tests        BIGINT NOT NULL,
    failures     BIGINT NOT NULL,
    errors       BIGINT NOT NULL,
    skipped      BIGINT NOT NULL,
    duration_ms  BIGINT NOT NULL
);
CREATE INDEX test_suites_run ON test_suites (run_id);

CREATE TABLE test_cases (
    id           BIGSERIAL PRIMARY KEY,
    suite_id     BIGINT NOT NULL REFERENCES test_suites(id),
    classname    TEXT NOT NULL,
    name         TEXT NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('passed', 'failed', 'error', 'skipped')),
    duration_ms  BIGINT NOT NULL,
    message      TEXT
);
CREATE INDEX test_cases_suite ON test_cases (suite_id);

CREATE TABLE artifacts (
    id          BIGSERIAL PRIMARY KEY,
    run_id      BIGINT NOT NULL REFERENCES runs(id),
    name        TEXT NOT NULL,
    path        TEXT NOT NULL,
    size_bytes  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (run_id, name)
);

CREATE TABLE users (
    id             BIGSERIAL PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    role           TEXT NOT NULL CHECK (role IN ('viewer', 'deployer', 'admin')),
    password_hash  TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('viewer', 'deployer', 'admin')),
    token_sha256  TEXT NOT NULL UNIQUE,
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);

CREATE TABLE audit_log (
    id      BIGSERIAL PRIMARY KEY,
    at      BIGINT NOT NULL,
    who     TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    detail  TEXT NOT NULL
);

CREATE TABLE deployments (
    id           BIGSERIAL PRIMARY KEY,
    run_id       BIGINT REFERENCES runs(id),
    project_id   BIGINT NOT NULL REFERENCES projects(id),
    environment  TEXT NOT NULL,
    host         TEXT NOT NULL,
    release_id   TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    who          TEXT NOT NULL,
    at           BIGINT NOT NULL
);
CREATE INDEX deployments_project ON deployments (project_id, environment, id);
