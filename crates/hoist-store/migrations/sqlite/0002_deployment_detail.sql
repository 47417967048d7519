-- What a run's deploy said about each host (the deploy engine's detail), and a run's
-- deployments read by run.
ALTER TABLE deployments ADD COLUMN detail TEXT;
CREATE INDEX deployments_run ON deployments (run_id, id);
