//! hoist-server's integration tests: one binary, a module per feature. Servers run in-process
//! on a random loopback port against a real SQLite store; webhooks are real HTTP requests with
//! real HMACs; runs use real git repositories and the real pipeline engine.

mod api;
mod config;
mod dashboard;
mod example_app;
mod runs;
mod support;
mod webhooks;
