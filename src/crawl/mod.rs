//! Crawl mode (`--depth`): what a crawl follows and what it refuses.
//!
//! Everything here is policy, not plumbing: the scheduler asks these
//! modules what to do and keeps the state.
//!
//! - [`links`]: which links of a parsed page are followed, and their
//!   [`Origin`] (seed, depth, referrer).
//! - [`scope`]: how far from its seed a crawl may go (`--scope`).
//! - [`normalize`]: URL identity (one fetch per page however its links
//!   spell it).
//! - [`robots`]: robots.txt rules per host (`--robots`).
//! - [`sitemap`]: sitemap.xml, index and text sitemaps, as seeds.
//! - [`netguard`]: the addresses a crawl must not step into from a public
//!   page.
//! - [`spill`]: the part of the frontier kept on disk.

pub mod links;
pub mod netguard;
pub mod normalize;
pub mod robots;
pub mod scope;
pub mod sitemap;
pub mod spill;

pub use links::{Crawl, Discovered, Origin, Seed};
