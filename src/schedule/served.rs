//! Work from many scans at once (`scriptscrape serve`): one scheduler, so
//! one `-c` and one `--per-host` for every client together, and scans
//! taken in turn.
//!
//! The host queues hold at most `max_queued` URLs; the next URL to enter
//! them is always the next one of the client whose turn it is, and of
//! that client's scans, the one whose turn it is: so a scan of a few URLs
//! waits behind at most the queues' worth of a big one, never behind all
//! of it, and a client cannot take more turns by opening more scans. A
//! scan whose client went away gives up its URLs, queued or not.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;

use futures::future::Either;
use tokio::sync::mpsc;

use super::Completed;
use super::work::{Closed, Ctx, FetchLimits, Work};
use crate::error::ErrorKind;

/// Bits of a page's `seq` that number it within its scan; the rest name
/// the scan.
pub const SEQ_BITS: u32 = 32;

/// Scans are numbered modulo this, so that every `seq` stays below the
/// crawl's first found one.
const SCAN_IDS: u64 = 1 << 29;

/// A scan handed to the scheduler.
pub struct NewScan {
    /// Its number (see [`scan_of`]).
    pub id: u64,
    /// Its URLs, as the client wrote them.
    pub lines: Vec<String>,
    /// Who asked for it (the client's address): turns go client by client.
    pub client: String,
}

/// The fetch limits of the scan numbered so, while a client still waits
/// for it; `None` once it has gone.
pub type Alive = Arc<dyn Fn(u64) -> Option<FetchLimits> + Send + Sync>;

/// The scan a page's `seq` belongs to, and the page's position in it.
pub fn scan_of(seq: u64) -> (u64, u32) {
    (seq >> SEQ_BITS, (seq & ((1 << SEQ_BITS) - 1)) as u32)
}

/// A scan's number from a running count.
pub fn scan_id(count: u64) -> u64 {
    count % SCAN_IDS
}

struct Turn {
    id: u64,
    next: u32,
    lines: std::vec::IntoIter<String>,
}

/// What came in.
pub enum Arrival {
    /// A new scan, or `None` when no more will come (the server stops).
    Scan(Option<NewScan>),
    /// Room in the queues, and a scan with URLs waiting: its turn.
    Take,
}

/// One client's scans with URLs waiting, in turn.
struct Client {
    key: String,
    scans: VecDeque<Turn>,
}

/// The scans waiting to have their URLs queued, client by client.
pub struct Served {
    scans: mpsc::Receiver<NewScan>,
    open: bool,
    turns: VecDeque<Client>,
    alive: Alive,
}

impl Served {
    /// Work from the scans that arrive on `scans`; a scan `alive` says
    /// is gone gives up its URLs, queued or not.
    pub fn new(scans: mpsc::Receiver<NewScan>, alive: Alive) -> Self {
        Served {
            scans,
            open: true,
            turns: VecDeque::new(),
            alive,
        }
    }
}

impl Work for Served {
    type Arrival = Arrival;

    fn next(&mut self, room: bool) -> impl Future<Output = Arrival> + Send {
        if room && !self.turns.is_empty() {
            return Either::Left(std::future::ready(Arrival::Take));
        }
        let scans = &mut self.scans;
        let open = self.open;
        Either::Right(async move {
            if !open {
                return std::future::pending().await;
            }
            Arrival::Scan(scans.recv().await)
        })
    }

    fn take_in(&mut self, arrival: Arrival, ctx: &mut Ctx<'_>) -> Result<(), Closed> {
        match arrival {
            Arrival::Scan(None) => self.open = false,
            Arrival::Scan(Some(scan)) => {
                let turn = Turn {
                    id: scan.id,
                    next: 0,
                    lines: scan.lines.into_iter(),
                };
                match self.turns.iter_mut().find(|c| c.key == scan.client) {
                    Some(client) => client.scans.push_back(turn),
                    None => self.turns.push_back(Client {
                        key: scan.client,
                        scans: VecDeque::from([turn]),
                    }),
                }
            }
            Arrival::Take => {
                let Some(mut client) = self.turns.pop_front() else {
                    return Ok(());
                };
                // The client goes back to the end of the line below,
                // while it has URLs waiting.
                let Some(mut turn) = client.scans.pop_front() else {
                    return Ok(());
                };
                let line = match (self.alive)(turn.id) {
                    Some(_) => turn.lines.next(),
                    None => None,
                };
                let Some(line) = line else {
                    if !client.scans.is_empty() {
                        self.turns.push_back(client);
                    }
                    return Ok(());
                };
                let seq = (turn.id << SEQ_BITS) | u64::from(turn.next);
                turn.next += 1;
                let at = turn.next;
                match crate::input::parse_url(line.trim()) {
                    Ok(url) => ctx.queues.push(url, seq, None, ctx.now),
                    Err(why) => ctx.rows.push(Completed::without_request(
                        seq,
                        line,
                        ErrorKind::InvalidUrl,
                        format!("URL {at} of the scan: {why}"),
                    )),
                }
                if turn.lines.len() > 0 {
                    client.scans.push_back(turn);
                }
                if !client.scans.is_empty() {
                    self.turns.push_back(client);
                }
            }
        }
        Ok(())
    }

    fn fetch_limits(&self, seq: u64) -> Option<FetchLimits> {
        (self.alive)(scan_of(seq).0)
    }

    fn elsewhere(&self) -> u64 {
        self.turns
            .iter()
            .flat_map(|c| &c.scans)
            .map(|t| t.lines.len() as u64)
            .sum()
    }

    fn exhausted(&self) -> bool {
        !self.open && self.turns.is_empty()
    }

    fn give_up(&mut self) -> u64 {
        let left = self.elsewhere();
        self.turns.clear();
        self.open = false;
        left
    }
}
