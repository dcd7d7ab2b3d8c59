//! End-to-end tests: the built binary against a loopback server.

mod support;

mod cli;
mod conformance;
mod crawl;
mod differential;
mod fetching;
mod input;
mod inventory;
mod operations;
mod pipeline;
mod readme;
