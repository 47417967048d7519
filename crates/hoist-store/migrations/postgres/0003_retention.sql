-- Retention deletes old runs: find them by when they finished, and the rows that point at a
-- run (its deliveries, the re-runs of it) without reading whole tables.
CREATE INDEX runs_finished ON runs (finished_at);
CREATE INDEX deliveries_run ON deliveries (run_id);
CREATE INDEX runs_rerun_of ON runs (rerun_of);
