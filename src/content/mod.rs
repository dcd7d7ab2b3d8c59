//! What the scripts are, not just where they come from (issue 16): their
//! content and whether a browser would run it.
//!
//! - [`scripts`]: `--fetch-scripts`, the stage that fetches each
//!   external script once per run and holds pages until theirs are known.
//! - [`sri`]: Subresource Integrity, as a browser checks an `integrity`
//!   attribute against the bytes it fetched.
//! - [`csp`]: the page's Content-Security-Policy, and whether it lets each
//!   script element run.

pub mod csp;
pub mod scripts;
pub mod sri;
