-- What a run's jobs started and restored, kept as facts (not only log lines) for the run page
-- and the API; which step deployed to a host and how long that host took; and the dashboard's
-- sessions, kept across restarts (only the SHA-256 of a session id is stored).
CREATE TABLE run_services (
    id        INTEGER PRIMARY KEY,
    run_id    INTEGER NOT NULL REFERENCES runs(id),
    job       TEXT NOT NULL,
    service   TEXT NOT NULL,
    port      INTEGER,
    millis    INTEGER NOT NULL,
    error     TEXT,
    at        INTEGER NOT NULL
);
CREATE INDEX run_services_run ON run_services (run_id, id);

CREATE TABLE run_caches (
    id        INTEGER PRIMARY KEY,
    run_id    INTEGER NOT NULL REFERENCES runs(id),
    job       TEXT NOT NULL,
    step_id   INTEGER REFERENCES steps(id),
    action    TEXT NOT NULL CHECK (action IN ('restore', 'save')),
    outcome   TEXT NOT NULL CHECK (outcome IN ('hit', 'fallback', 'miss', 'saved', 'exists')),
    keys      TEXT NOT NULL,
    matched   TEXT,
    bytes     INTEGER NOT NULL,
    millis    INTEGER NOT NULL,
    at        INTEGER NOT NULL
);
CREATE INDEX run_caches_run ON run_caches (run_id, id);

ALTER TABLE deployments ADD COLUMN step_id INTEGER REFERENCES steps(id);
ALTER TABLE deployments ADD COLUMN millis INTEGER;

CREATE TABLE sessions (
    id_sha256     TEXT PRIMARY KEY,
    user_name     TEXT NOT NULL,
    csrf          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER NOT NULL
);
CREATE INDEX sessions_last_used ON sessions (last_used_at);
