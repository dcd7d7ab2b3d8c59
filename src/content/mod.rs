//! What the scripts are, not just where they come from (issue 16): their
//! content and whether a browser would run it.
//!
//! - [`sri`]: Subresource Integrity, as a browser checks an `integrity`
//!   attribute against the bytes it fetched.
//! - [`csp`]: the page's Content-Security-Policy, and whether it lets each
//!   script element run.

pub mod csp;
pub mod sri;
