//! A real git project with a hoist.toml, and a run of its pipeline that collects the events.
#![allow(dead_code)]

use hoist_config::pipeline::{self, Pipeline};
use hoist_pipeline::engine::{self, RunOptions};
use hoist_pipeline::event::Event;
use hoist_pipeline::record::RunRecord;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

pub struct Project {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub cache: PathBuf,
    pub ci: PathBuf,
}

pub fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .arg("-ec")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Project {
    /// A git repository on branch `master` with `hoist.toml` = `toml` and `files`, committed.
    pub fn new(toml: &str, files: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("app");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("hoist.toml"), toml).unwrap();
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        sh(&dir, "git init -q -b master . && git add -A && git -c user.name=t -c user.email=t@t commit -qm init");
        let cache = tmp.path().join("cache");
        let ci = tmp.path().join("ci");
        Self {
            tmp,
            dir,
            cache,
            ci,
        }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("hoist.toml")
    }

    pub fn pipeline(&self) -> Pipeline {
        pipeline::load(&self.config()).unwrap()
    }

    pub fn options(&self) -> RunOptions {
        let mut opts = RunOptions::new(&self.config());
        opts.ci_dir = self.ci.clone();
        opts.cache_dir = self.cache.clone();
        opts
    }

    pub fn run(&self) -> Run {
        self.run_with(self.options())
    }

    pub fn run_with(&self, opts: RunOptions) -> Run {
        self.run_observed(opts, |_| {})
    }

    /// A run that shows each event to `observe` as it happens (a test's gate on the run).
    pub fn run_observed(&self, opts: RunOptions, observe: impl Fn(&Event) + Sync) -> Run {
        let events = Mutex::new(Vec::new());
        let record = engine::run(&self.pipeline(), &opts, &|e| {
            observe(&e);
            events.lock().unwrap().push(e);
        })
        .unwrap();
        Run {
            record,
            events: events.into_inner().unwrap(),
        }
    }
}

pub struct Run {
    pub record: RunRecord,
    pub events: Vec<Event>,
}

impl Run {
    /// Every output line of a job's steps, in order.
    pub fn output(&self, job: &str) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Output { job: j, line, .. } if j == job => Some(line.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn job(&self, name: &str) -> &hoist_pipeline::record::JobRecord {
        self.record.jobs.iter().find(|j| j.name == name).unwrap()
    }

    /// (step name, status) of a job's steps.
    pub fn steps(&self, job: &str) -> Vec<(String, String)> {
        self.job(job)
            .steps
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    serde_json::to_value(s.status)
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_string(),
                )
            })
            .collect()
    }

    /// The messages of a step's notes, whatever their severity.
    pub fn notes(&self, job: &str, step: usize) -> Vec<String> {
        self.job(job).steps[step - 1]
            .notes
            .iter()
            .map(|note| note.message.clone())
            .collect()
    }

    /// The messages of a step's warnings.
    pub fn warnings(&self, job: &str, step: usize) -> Vec<String> {
        self.job(job).steps[step - 1]
            .notes
            .iter()
            .filter(|note| note.severity == hoist_pipeline::record::Severity::Warning)
            .map(|note| note.message.clone())
            .collect()
    }
}
