//! The `--fetch-scripts` stage: what is behind each external script, each
//! fetched once per run, and the pages that wait for it.
//!
//! It sits between the parse threads and the writer. A parsed page whose
//! external scripts are all known goes on at once, with their content;
//! otherwise it is held, and the scripts nobody asked for yet go to the
//! fetch stage, which fetches them ahead of pages within the same limits
//! (see [`crate::schedule::hosts`]). When the last script a held page
//! waits for arrives, the page goes on.
//!
//! The fetch stage hears of every page that reaches this stage
//! ([`News::Page`]), so that it ends only once no page can ask for another
//! script, and of every held page that goes on ([`News::Released`]), so
//! that it can stop starting pages while too many are held.
//!
//! Memory: the scripts known are kept in a map of at most
//! [`MAX_KNOWN_SCRIPTS`] entries (the oldest fetched are forgotten past
//! that, and fetched again if a later page names them); a held page keeps
//! its rows, and the fetch stage holds at most as many pages as
//! [`max_held`] says.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;

use tokio::sync::mpsc;
use url::Url;

use super::sri::{self, Algorithm, Digests};
use crate::error::ErrorKind;
use crate::extract::Src;
use crate::fetch::{FetchFailure, ScriptBody};
use crate::output::PageResult;

/// Scripts remembered at once. An entry costs about 350 bytes with its URL
/// (see the README), so this is some 18 MB at most.
pub const MAX_KNOWN_SCRIPTS: usize = 50_000;

/// Pages held for their scripts before the fetch stage stops starting
/// pages: enough to keep every request slot busy on pages while scripts
/// trickle in, few enough that their rows stay a small part of memory.
pub fn max_held(concurrency: usize) -> usize {
    concurrency.saturating_mul(4).max(64)
}

/// What was found behind one script's `src`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Content {
    /// The HTTP status of the script's response, when one came back.
    pub status: Option<u16>,
    /// Why there is no content, as for pages; `None` when it was read.
    pub error: Option<ErrorKind>,
    /// Body bytes read (decompressed); `None` when not known (a script a
    /// browser did not run: its response's body is not seen).
    pub bytes: Option<u64>,
    /// The body's digests, when it was read whole.
    pub digests: Option<Digests>,
    /// Whether a browser ran it under the element's `integrity`, when a
    /// browser said so (`--render`); else worked out from `digests`.
    pub integrity_seen: Option<bool>,
}

impl Content {
    /// The result of a script's fetch.
    pub fn from_fetch(fetched: Result<ScriptBody, FetchFailure>) -> Content {
        match fetched {
            Ok(body) => Content {
                status: Some(body.status),
                error: None,
                bytes: Some(body.bytes),
                digests: Some(body.digests),
                integrity_seen: None,
            },
            Err(failure) => Content {
                status: failure.status,
                error: Some(failure.error.kind),
                bytes: Some(failure.bytes),
                digests: None,
                integrity_seen: None,
            },
        }
    }

    /// `sha384-<base64>` of the body, ready for an `integrity` attribute.
    pub fn sha384(&self) -> Option<String> {
        self.digests.as_ref().map(|d| d.sri(Algorithm::Sha384))
    }

    /// Whether a browser would run this body under `integrity`; `None`
    /// when the body is not known.
    pub fn integrity_ok(&self, integrity: &str) -> Option<bool> {
        if self.integrity_seen.is_some() {
            return self.integrity_seen;
        }
        let digests = self.digests.as_ref()?;
        Some(sri::matches_digests(integrity, digests))
    }
}

/// What reaches this stage: parsed pages (each with what goes along with
/// it, `T`: a worker's found links), and fetched scripts.
#[derive(Debug)]
pub enum Arrival<T> {
    /// A page from the parse threads.
    Page(PageResult, T),
    /// A script's fetch ended; `url` is the one asked for.
    Script(Url, Content),
}

/// What this stage tells the fetch stage.
#[derive(Debug)]
pub enum News {
    /// A page arrived. `fetch`: scripts no page named before, each with
    /// the Referer to send (empty: none); `held`: the page waits for
    /// scripts.
    Page {
        fetch: Vec<(Url, Arc<str>)>,
        held: bool,
    },
    /// A held page went on.
    Released,
}

/// The Referer sent for `script` from the page `document`: the page's
/// origin, as a browser sends it to another origin by default
/// (`strict-origin-when-cross-origin`), and nothing from https to http.
/// Never the page's path and query, even to its own origin: the client
/// keeps a request's headers across redirects, and a script on the page's
/// origin may redirect anywhere. Empty: no Referer.
pub fn referer(document: &Url, script: &Url) -> String {
    if document.scheme() == "https" && script.scheme() != "https" {
        return String::new();
    }
    match document.origin() {
        origin @ url::Origin::Tuple(..) => format!("{}/", origin.ascii_serialization()),
        url::Origin::Opaque(_) => String::new(),
    }
}

/// The script a `src` names, as fetched: only http(s), without its
/// fragment (which never reaches the server).
pub fn fetchable(src: &Src) -> Option<Url> {
    let Src::Resolved(url) = src else { return None };
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let mut url = url.clone();
    url.set_fragment(None);
    Some(url)
}

enum Entry {
    /// Being fetched; these held pages wait for it.
    Pending(Vec<u64>),
    Known(Arc<Content>),
}

struct Held<T> {
    page: PageResult,
    with: T,
    /// Scripts of the page not known yet (a script named twice counts
    /// twice).
    waiting: usize,
}

/// The stage's state: the scripts known and the pages held (each with its
/// `T`).
pub struct Scripts<T> {
    /// Scripts one page may have fetched (`--max-scripts-per-page`).
    max_per_page: usize,
    entries: HashMap<Arc<str>, Entry>,
    /// Known scripts, oldest first, to forget past the bound.
    known_order: VecDeque<Arc<str>>,
    held: HashMap<u64, Held<T>>,
    next_held: u64,
    /// Script elements not fetched for the per-page bound.
    over_limit: u64,
}

impl<T> Scripts<T> {
    /// A stage that knows no script yet, and fetches at most
    /// `max_per_page` for one page (a page naming more, perhaps to hold
    /// the run on scripts that never answer, gets `script_limit` for the
    /// rest).
    pub fn new(max_per_page: usize) -> Scripts<T> {
        Scripts {
            max_per_page,
            entries: HashMap::new(),
            known_order: VecDeque::new(),
            held: HashMap::new(),
            next_held: 0,
            over_limit: 0,
        }
    }

    /// Takes a parsed page in: returns the page when it can go on now,
    /// and the news for the fetch stage.
    pub fn page(&mut self, mut page: PageResult, with: T) -> (Option<(PageResult, T)>, News) {
        let id = self.next_held;
        let mut fetch = Vec::new();
        let mut waiting = 0;
        if let Ok(scripts) = &mut page.outcome {
            // Parsed only for a page that has a script to ask for.
            let mut document: Option<Option<Url>> = None;
            for script in scripts.iter_mut() {
                let Some(url) = script.src.as_ref().and_then(fetchable) else {
                    continue;
                };
                match self.entries.get_mut(url.as_str()) {
                    Some(Entry::Known(content)) => script.content = Some(Arc::clone(content)),
                    Some(Entry::Pending(pages)) => {
                        pages.push(id);
                        waiting += 1;
                    }
                    None if fetch.len() >= self.max_per_page => {
                        self.over_limit += 1;
                        script.content = Some(Arc::new(Content {
                            status: None,
                            error: Some(ErrorKind::ScriptLimit),
                            bytes: Some(0),
                            digests: None,
                            integrity_seen: None,
                        }));
                    }
                    None => {
                        self.entries
                            .insert(url.as_str().into(), Entry::Pending(vec![id]));
                        let document = document.get_or_insert_with(|| {
                            let url = page.final_url.as_deref().unwrap_or(&page.page_url);
                            Url::parse(url).ok()
                        });
                        let referer = document
                            .as_ref()
                            .map_or_else(String::new, |d| referer(d, &url));
                        fetch.push((url, Arc::from(referer)));
                        waiting += 1;
                    }
                }
            }
        }
        if waiting == 0 {
            return (Some((page, with)), News::Page { fetch, held: false });
        }
        self.next_held += 1;
        self.held.insert(
            id,
            Held {
                page,
                with,
                waiting,
            },
        );
        (None, News::Page { fetch, held: true })
    }

    /// A script's fetch ended: returns the held pages that can go on.
    pub fn script(&mut self, url: &Url, content: Content) -> Vec<(PageResult, T)> {
        let content = Arc::new(content);
        let key: Arc<str> = url.as_str().into();
        let pages = match self
            .entries
            .insert(Arc::clone(&key), Entry::Known(Arc::clone(&content)))
        {
            Some(Entry::Pending(pages)) => pages,
            // A result nobody waits for (cannot happen: each script is
            // asked for once while pending); kept all the same.
            _ => Vec::new(),
        };
        self.known_order.push_back(key);
        self.forget_oldest();
        let mut ready = Vec::new();
        for id in pages {
            let Some(held) = self.held.get_mut(&id) else {
                continue;
            };
            if let Ok(scripts) = &mut held.page.outcome {
                for script in scripts.iter_mut() {
                    if script.content.is_none()
                        && script.src.as_ref().and_then(fetchable).as_ref() == Some(url)
                    {
                        script.content = Some(Arc::clone(&content));
                        held.waiting -= 1;
                    }
                }
            }
            if held.waiting == 0
                && let Some(held) = self.held.remove(&id)
            {
                ready.push((held.page, held.with));
            }
        }
        ready
    }

    /// Pages still held: those whose scripts will not come (the run was
    /// stopped), which are left unwritten.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    fn forget_oldest(&mut self) {
        while self.known_order.len() > MAX_KNOWN_SCRIPTS {
            if let Some(key) = self.known_order.pop_front() {
                self.entries.remove(&key);
            }
        }
    }
}

/// The scripts a run fetched, for its summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Script fetches that ended (each distinct script once, unless it
    /// was forgotten and named again), failed ones included.
    pub fetched: u64,
    /// Of those, the ones with no content, by kind.
    pub failed: BTreeMap<ErrorKind, u64>,
    /// Script body bytes read (decompressed), failures' partial bodies
    /// included.
    pub bytes: u64,
    /// Script elements not fetched for `--max-scripts-per-page`.
    pub over_limit: u64,
}

impl Tally {
    /// Fetches that gave no content.
    pub fn failures(&self) -> u64 {
        self.failed.values().sum()
    }
}

/// How the stage ended.
#[derive(Debug, Default)]
pub struct Ended {
    /// Pages left held, their scripts never fetched (a stopped run): not
    /// written.
    pub held: u64,
    /// The writer went away.
    pub output_closed: bool,
    /// The scripts fetched.
    pub tally: Tally,
}

/// Runs the stage until every sender of `arrivals` is gone: pages go on
/// through `deliver` (false: no one takes pages any more) as their scripts
/// are known, news to `news`.
pub fn run<T>(
    arrivals: std_mpsc::Receiver<Arrival<T>>,
    mut deliver: impl FnMut(PageResult, T) -> bool,
    news: mpsc::UnboundedSender<News>,
    max_per_page: usize,
) -> Ended {
    let mut scripts = Scripts::new(max_per_page);
    let mut ended = Ended::default();
    for arrival in arrivals {
        match arrival {
            Arrival::Page(page, with) => {
                let (ready, told) = scripts.page(page, with);
                // The fetch stage hears first, so that it counts the page
                // before the writer can finish the run; it is gone only
                // when the run is over.
                let _ = news.send(told);
                if let Some((page, with)) = ready
                    && !deliver(page, with)
                {
                    ended.output_closed = true;
                    return ended;
                }
            }
            Arrival::Script(url, content) => {
                ended.tally.fetched += 1;
                ended.tally.bytes += content.bytes.unwrap_or(0);
                if let Some(kind) = content.error {
                    *ended.tally.failed.entry(kind).or_default() += 1;
                }
                for (page, with) in scripts.script(&url, content) {
                    let _ = news.send(News::Released);
                    if !deliver(page, with) {
                        ended.output_closed = true;
                        return ended;
                    }
                }
            }
        }
    }
    ended.held = scripts.held() as u64;
    ended.tally.over_limit = scripts.over_limit;
    ended
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::Extractor;
    use std::time::Duration;

    fn page(seq: u64, html: &str) -> PageResult {
        let url = Url::parse(&format!("https://shop.example/{seq}#top")).unwrap();
        PageResult {
            seq,
            page_url: url.to_string(),
            final_url: Some(url.to_string()),
            status: Some(200),
            outcome: Ok(Extractor::new().extract(&url, html)),
            csp: None,
            bytes: 0,
            elapsed: Duration::ZERO,
            charset: None,
            attempts: 1,
            depth: 0,
            referrer: None,
            incomplete: None,
        }
    }

    fn read(body: &[u8]) -> Content {
        Content {
            status: Some(200),
            error: None,
            bytes: Some(body.len() as u64),
            digests: Some(Digests::of(body)),
            integrity_seen: None,
        }
    }

    fn fetch_of(news: News) -> (Vec<String>, bool) {
        match news {
            News::Page { fetch, held } => {
                (fetch.into_iter().map(|(u, _)| u.into()).collect(), held)
            }
            News::Released => panic!("not a page's news"),
        }
    }

    #[test]
    fn a_script_is_asked_for_once_and_its_pages_go_on_when_it_comes() {
        let mut stage = Scripts::new(100);
        let html = "<script src=/a.js></script><script>x()</script><script src=/a.js#b></script>";
        let (ready, news) = stage.page(page(1, html), ());
        assert!(ready.is_none());
        let (fetch, held) = fetch_of(news);
        assert_eq!(fetch, ["https://shop.example/a.js"]);
        assert!(held);
        let (ready, news) = stage.page(page(2, "<script src=/a.js></script>"), ());
        assert!(ready.is_none());
        assert_eq!(fetch_of(news), (vec![], true), "already asked for");
        let (ready, news) = stage.page(page(3, "<script>inline()</script>"), ());
        assert!(ready.is_some(), "nothing to wait for");
        assert_eq!(fetch_of(news), (vec![], false));

        let a = Url::parse("https://shop.example/a.js").unwrap();
        let released = stage.script(&a, read(b"a"));
        let seqs: Vec<u64> = released.iter().map(|(p, ())| p.seq).collect();
        assert_eq!(seqs, [1, 2]);
        let scripts = released[0].0.outcome.as_ref().unwrap();
        assert!(scripts[0].content.is_some() && scripts[2].content.is_some());
        assert!(scripts[1].content.is_none(), "inline");
        assert_eq!(stage.held(), 0);

        // Known now: a later page goes on at once.
        let (ready, news) = stage.page(page(4, "<script src=/a.js></script>"), ());
        let (ready, ()) = ready.expect("known script");
        assert_eq!(fetch_of(news), (vec![], false));
        let content = ready.outcome.unwrap()[0].content.clone().unwrap();
        assert_eq!(content.sha384(), read(b"a").sha384());
        assert_eq!(
            content.integrity_ok(&Digests::of(b"a").sri(Algorithm::Sha256)),
            Some(true)
        );
    }

    #[test]
    fn a_page_has_at_most_its_share_of_new_scripts_fetched() {
        let mut stage = Scripts::<()>::new(2);
        let html =
            "<script src=/a.js></script><script src=/b.js></script><script src=/c.js></script>";
        let (ready, news) = stage.page(page(1, html), ());
        assert!(ready.is_none());
        assert_eq!(fetch_of(news).0.len(), 2);
        let b = Url::parse("https://shop.example/b.js").unwrap();
        assert!(stage.script(&b, read(b"b")).is_empty());
        let a = Url::parse("https://shop.example/a.js").unwrap();
        let (page, ()) = stage.script(&a, read(b"a")).pop().expect("released");
        let scripts = page.outcome.unwrap();
        let c = scripts[2].content.as_ref().expect("marked");
        assert_eq!(c.error, Some(ErrorKind::ScriptLimit));
        // Another page may have c fetched: it was never asked for.
        let (_, news) = stage.page(self::page(2, "<script src=/c.js></script>"), ());
        assert_eq!(fetch_of(news).0, ["https://shop.example/c.js"]);
    }

    #[test]
    fn the_referer_is_what_a_browser_sends_by_default() {
        let mut stage = Scripts::<()>::new(100);
        let html = "<script src=/own.js></script><script src=//cdn.example/x.js></script>\
                    <script src=http://plain.example/y.js></script>";
        let mut sent = page(7, html);
        sent.final_url = Some("https://u:p@shop.example/pay?order=42#top".into());
        let (_, news) = stage.page(sent, ());
        let News::Page { fetch, .. } = news else {
            panic!("a page's news")
        };
        let referers: Vec<&str> = fetch.iter().map(|(_, r)| &**r).collect();
        // The origin (no credentials, path or query) to any origin, its
        // own included, and nothing from https to http.
        assert_eq!(
            referers,
            ["https://shop.example/", "https://shop.example/", ""]
        );
    }
}
