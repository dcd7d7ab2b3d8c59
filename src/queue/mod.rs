//! The shared work queue on Redis: many workers, one collector.
//!
//! - [`wire`]: a page's result as it travels from a worker to the
//!   collector.

pub mod wire;
