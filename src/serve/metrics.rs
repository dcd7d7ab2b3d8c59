//! `GET /metrics`: what the server did, in the Prometheus text format.

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::output::PageResult;

/// The server's metrics, and the registry that writes them.
pub struct Metrics {
    registry: Registry,
    /// Scan requests, by the status they were answered with.
    scans: Family<Vec<(&'static str, String)>, Counter>,
    /// Pages scanned, by result: `ok` or the error kind.
    pages: Family<Vec<(&'static str, &'static str)>, Counter>,
    /// Each page's time, from the start of its first request to the end
    /// of its body.
    fetch_seconds: Histogram,
    /// Scans being answered.
    pub scans_in_flight: Gauge,
    /// URLs of running scans not yet answered.
    pub urls_pending: Gauge,
    /// Connections answered 503 at once: their address held its share.
    pub connections_refused: Counter,
}

impl Metrics {
    /// Registers every metric (under `scriptscrape_`).
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("scriptscrape");
        let scans = Family::default();
        registry.register(
            "scan_requests",
            "Scan requests, by the HTTP status they were answered with",
            scans.clone(),
        );
        let pages = Family::default();
        registry.register(
            "pages",
            "Pages scanned, by result (ok, or the error kind)",
            pages.clone(),
        );
        // 10 ms to about 80 s.
        let fetch_seconds = Histogram::new(exponential_buckets(0.01, 2.0, 14));
        registry.register(
            "fetch_seconds",
            "Time of each page, from its first request to the end of its body",
            fetch_seconds.clone(),
        );
        let scans_in_flight = Gauge::default();
        registry.register(
            "scans_in_flight",
            "Scans being answered",
            scans_in_flight.clone(),
        );
        let urls_pending = Gauge::default();
        registry.register(
            "urls_pending",
            "URLs of running scans not yet answered",
            urls_pending.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "connections_refused",
            "Connections answered 503 at once, their address holding its share of connections",
            connections_refused.clone(),
        );
        Metrics {
            registry,
            scans,
            pages,
            fetch_seconds,
            scans_in_flight,
            urls_pending,
            connections_refused,
        }
    }

    /// A scan request answered with `status`.
    pub fn scan_answered(&self, status: u16) {
        self.scans
            .get_or_create(&vec![("status", status.to_string())])
            .inc();
    }

    /// A page of a scan, done.
    pub fn page(&self, page: &PageResult) {
        let result = match &page.outcome {
            Ok(_) => "ok",
            Err(e) => e.kind.as_str(),
        };
        self.pages.get_or_create(&vec![("result", result)]).inc();
        if page.status.is_some() {
            self.fetch_seconds.observe(page.elapsed.as_secs_f64());
        }
    }

    /// The text format (version 0.0.4).
    pub fn text(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_text::encode(&mut text, &self.registry);
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
