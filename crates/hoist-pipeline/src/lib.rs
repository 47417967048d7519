//! hoist's CI engine: the pipeline a push runs before it deploys.
//!
//! `hoist_config::pipeline` reads and checks the `[pipeline]` table; [`run`] runs it — jobs in
//! parallel (bounded) after the jobs they require, each in a clean workspace with native
//! services ([`services`]), cached paths ([`cache_store`]), masked and time-stamped logs,
//! artifacts and JUnit reports ([`junit`]) — and returns a [`record::RunRecord`]. It never
//! prints: it emits [`event::Event`]s to a callback. [`import`] converts a CircleCI config.
//!
//! Every front end (`hoist ci run`, the server) runs a pipeline the same way:
//!
//! ```no_run
//! let config = std::path::Path::new("/srv/checkout/hoist.toml");
//! let pipeline = hoist_config::pipeline::load(config)?;
//! let mut options = hoist_pipeline::RunOptions::new(config);
//! options.revision = Some("0123abcd".into()); // default: the checkout's HEAD
//! let record = hoist_pipeline::run(&pipeline, &options, &|event| println!("{event:?}"))?;
//! println!("passed: {}", record.passed);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cache_key;
pub mod cache_store;
pub mod engine;
pub mod event;
pub mod import;
pub mod junit;
pub mod mask;
pub mod process;
pub mod record;
pub mod secrets;
pub mod services;

pub use engine::{request_cancel, run, RunOptions};
pub use hoist_config::pipeline::Pipeline;
