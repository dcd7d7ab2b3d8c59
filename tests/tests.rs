//! End-to-end tests: the built binary against a loopback server.

mod support;

mod authorisation;
mod cli;
mod config_file;
mod conformance;
mod content;
mod cookies;
mod crawl;
mod decoding;
mod differential;
mod exports;
mod fastpath;
mod fetching;
mod input;
mod inventory;
mod messages;
mod operations;
mod parquet;
mod pipeline;
mod proxies;
mod queue;
mod readme;
mod render;
mod scaleout;
mod serve;
mod shards;
