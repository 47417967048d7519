//! Which job runs next: a pure state machine over the jobs' `requires`, their outcomes, the
//! parallelism bound and cancellation. It starts no process; the engine asks it what to do and
//! tells it what happened.

use crate::record::JobStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Running,
    Done(JobStatus),
}

/// What the engine should do with one job, by its index in the scheduler's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Start it now.
    Start(usize),
    /// It will not run: a job it requires did not pass.
    Skip(usize, String),
    /// It will not run: the run was cancelled before it started.
    Cancel(usize),
}

/// The jobs of one run, in definition order, with what each requires (by index) and its state.
pub(crate) struct Scheduler {
    requires: Vec<Vec<usize>>,
    names: Vec<String>,
    states: Vec<State>,
    max_parallel: usize,
}

impl Scheduler {
    /// `jobs` are (name, requires) in definition order. A required job that is not in the list
    /// (not selected with `--job`) is taken as met.
    pub fn new<'a>(
        jobs: impl IntoIterator<Item = (&'a str, &'a [String])>,
        max_parallel: usize,
    ) -> Self {
        let jobs: Vec<(&str, &[String])> = jobs.into_iter().collect();
        let names: Vec<String> = jobs.iter().map(|(name, _)| (*name).to_owned()).collect();
        let requires = jobs
            .iter()
            .map(|(_, requires)| {
                requires
                    .iter()
                    .filter_map(|r| names.iter().position(|n| n == r))
                    .collect()
            })
            .collect();
        Self {
            requires,
            states: vec![State::Pending; names.len()],
            names,
            max_parallel: max_parallel.max(1),
        }
    }

    /// Records how job `index` ended (or that it was filtered out before the run).
    pub fn finish(&mut self, index: usize, status: JobStatus) {
        self.states[index] = State::Done(status);
    }

    /// How many jobs are running.
    pub fn running(&self) -> usize {
        self.states.iter().filter(|s| **s == State::Running).count()
    }

    /// Decides every job that can be decided now, in definition order: skips the jobs whose
    /// required job did not pass, cancels the pending ones when `cancelled`, and starts the
    /// ready ones while fewer than `max_parallel` run. Started jobs count as running until
    /// [`Scheduler::finish`]; skipped and cancelled ones are done.
    pub fn next(&mut self, cancelled: bool) -> Vec<Decision> {
        let mut decisions = Vec::new();
        // A skip can decide a job earlier in the list: repeat until nothing changes.
        loop {
            let before = decisions.len();
            for index in 0..self.names.len() {
                if self.states[index] != State::Pending {
                    continue;
                }
                if let Some(decision) = self.decide(index, cancelled) {
                    self.states[index] = match decision {
                        Decision::Start(_) => State::Running,
                        Decision::Skip(..) => State::Done(JobStatus::Skipped),
                        Decision::Cancel(_) => State::Done(JobStatus::Cancelled),
                    };
                    decisions.push(decision);
                }
            }
            if decisions.len() == before {
                return decisions;
            }
        }
    }

    fn decide(&self, index: usize, cancelled: bool) -> Option<Decision> {
        let failed = self.requires[index]
            .iter()
            .find_map(|r| match self.states[*r] {
                State::Done(status) if status != JobStatus::Passed => Some((*r, status)),
                _ => None,
            });
        if let Some((required, status)) = failed {
            let how = match status {
                JobStatus::Skipped => "was skipped",
                JobStatus::Failed => "failed",
                JobStatus::TimedOut => "timed out",
                JobStatus::Cancelled => "was cancelled",
                JobStatus::Passed => "passed",
            };
            let reason = format!("required job {:?} {how}", self.names[required]);
            return Some(Decision::Skip(index, reason));
        }
        if cancelled {
            return Some(Decision::Cancel(index));
        }
        let ready = self.requires[index]
            .iter()
            .all(|r| self.states[*r] == State::Done(JobStatus::Passed));
        (ready && self.running() < self.max_parallel).then_some(Decision::Start(index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(requires: &[&str]) -> Vec<String> {
        requires.iter().map(|r| (*r).to_owned()).collect()
    }

    fn scheduler(jobs: &[(&str, &[&str])], max_parallel: usize) -> Scheduler {
        let requires: Vec<Vec<String>> = jobs.iter().map(|(_, r)| owned(r)).collect();
        Scheduler::new(
            jobs.iter()
                .zip(&requires)
                .map(|((name, _), r)| (*name, r.as_slice())),
            max_parallel,
        )
    }

    #[test]
    fn independent_jobs_start_up_to_the_bound_in_definition_order() {
        let mut s = scheduler(&[("a", &[]), ("b", &[]), ("c", &[])], 2);
        assert_eq!(s.next(false), [Decision::Start(0), Decision::Start(1)]);
        assert_eq!(s.next(false), []);
        s.finish(1, JobStatus::Passed);
        assert_eq!(s.next(false), [Decision::Start(2)]);
        assert_eq!(s.running(), 2);
    }

    #[test]
    fn a_job_starts_only_once_what_it_requires_passed() {
        let mut s = scheduler(&[("test", &["build"]), ("build", &[])], 4);
        assert_eq!(s.next(false), [Decision::Start(1)]);
        s.finish(1, JobStatus::Passed);
        assert_eq!(s.next(false), [Decision::Start(0)]);
    }

    #[test]
    fn a_failure_skips_everything_downstream_even_earlier_in_the_list() {
        let mut s = scheduler(
            &[("deploy", &["test"]), ("test", &["build"]), ("build", &[])],
            1,
        );
        assert_eq!(s.next(false), [Decision::Start(2)]);
        s.finish(2, JobStatus::Failed);
        assert_eq!(
            s.next(false),
            [
                Decision::Skip(1, "required job \"build\" failed".into()),
                Decision::Skip(0, "required job \"test\" was skipped".into()),
            ]
        );
        assert_eq!(s.running(), 0);
    }

    #[test]
    fn a_filtered_out_job_skips_its_dependents() {
        let mut s = scheduler(&[("lint", &[]), ("deploy", &["lint"])], 2);
        s.finish(0, JobStatus::Skipped);
        assert_eq!(
            s.next(false),
            [Decision::Skip(
                1,
                "required job \"lint\" was skipped".into()
            )]
        );
    }

    #[test]
    fn cancellation_stops_pending_jobs_but_not_running_ones() {
        let mut s = scheduler(&[("a", &[]), ("b", &["a"]), ("c", &[])], 1);
        assert_eq!(s.next(false), [Decision::Start(0)]);
        assert_eq!(s.next(true), [Decision::Cancel(1), Decision::Cancel(2)]);
        assert_eq!(s.running(), 1);
        s.finish(0, JobStatus::Cancelled);
        assert_eq!(s.next(true), []);
    }

    #[test]
    fn a_required_job_outside_the_selection_is_taken_as_met() {
        let mut s = scheduler(&[("test", &["build"])], 1);
        assert_eq!(s.next(false), [Decision::Start(0)]);
    }

    #[test]
    fn a_timed_out_job_is_named_in_the_skip_reason() {
        let mut s = scheduler(&[("a", &[]), ("b", &["a"])], 1);
        s.next(false);
        s.finish(0, JobStatus::TimedOut);
        assert_eq!(
            s.next(false),
            [Decision::Skip(1, "required job \"a\" timed out".into())]
        );
    }
}
