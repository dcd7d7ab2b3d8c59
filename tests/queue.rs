//! The shared work queue (scriptscrape::queue) against a real redis-server
//! per test: dedupe, delivery, reclaim, publish-once, close and drain,
//! persistence across a restart, passwords and outages.

use std::time::{Duration, Instant};

use scriptscrape::queue::{Completion, Job, JobOptions, Queue, QueueError, QueueOptions, WorkItem};

use crate::support::redis::{RedisOptions, RedisServer};

/// The claim idle time of these tests: short, so reclaiming is quick.
const IDLE: Duration = Duration::from_millis(200);

async fn connect(url: &str) -> Queue {
    connect_idle(url, IDLE).await
}

/// For tests that assert what happens before the claim idle time passes:
/// long enough that a loaded machine's pauses do not reach it.
async fn connect_idle(url: &str, claim_idle: Duration) -> Queue {
    let options = QueueOptions {
        claim_idle,
        ..QueueOptions::default()
    };
    Queue::connect(url, options).await.expect("connect")
}

async fn new_job(queue: &Queue, name: &str) -> Job {
    let job = Job::new(name).expect("job name");
    assert!(
        queue
            .create_job(&job, JobOptions::default())
            .await
            .expect("create")
    );
    job
}

fn item(url: &str) -> WorkItem {
    WorkItem {
        url: url.to_owned(),
        identity: None,
        depth: 0,
        seed: url.to_owned(),
        referrer: None,
    }
}

fn found(url: &str, referrer: &str) -> WorkItem {
    WorkItem {
        url: url.to_owned(),
        identity: None,
        depth: 1,
        seed: referrer.to_owned(),
        referrer: Some(referrer.to_owned()),
    }
}

/// A plain connection for looking at the keys themselves.
async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection")
}

/// Takes for `consumer` until something comes, for at most 5 s.
async fn take_within(
    queue: &Queue,
    job: &Job,
    consumer: &str,
) -> Vec<scriptscrape::queue::Delivery> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let taken = queue
            .take(job, consumer, 10, Duration::from_millis(100))
            .await
            .expect("take");
        if !taken.is_empty() {
            return taken;
        }
        assert!(
            Instant::now() < deadline,
            "{consumer} was handed nothing in 5 s"
        );
    }
}

#[tokio::test]
async fn enqueue_adds_each_url_once_with_rising_seqs() {
    let server = RedisServer::start();
    let queue = connect(&server.url()).await;
    let job = new_job(&queue, "dedupe").await;
    let (a, b, c) = ("https://a.test/", "https://b.test/", "https://c.test/");

    let first = queue
        .enqueue(&job, &[item(a), item(b), item(a)])
        .await
        .unwrap();
    assert_eq!(first, [Some(1), Some(2), None]);
    let second = queue.enqueue(&job, &[item(b), item(c)]).await.unwrap();
    assert_eq!(second, [None, Some(3)]);

    let status = queue.status(&job).await.unwrap();
    assert_eq!(
        (status.queued, status.in_flight, status.enqueued),
        (3, 0, 3)
    );
    assert!(!status.closed);
    // Creating it again changes nothing.
    assert!(!queue.create_job(&job, JobOptions::default()).await.unwrap());
    assert_eq!(queue.status(&job).await.unwrap(), status);
}

#[tokio::test]
async fn taken_work_completed_reaches_the_collector_once() {
    let server = RedisServer::start();
    let queue = connect(&server.url()).await;
    let job = new_job(&queue, "round-trip").await;
    let seed = "https://a.test/";
    queue
        .enqueue(&job, &[item(seed), item("https://b.test/")])
        .await
        .unwrap();

    let taken = queue.take(&job, "w1", 10, Duration::ZERO).await.unwrap();
    assert_eq!(taken.len(), 2);
    assert_eq!(taken[0].item, item(seed));
    assert_eq!((taken[0].seq, taken[1].seq), (1, 2));
    assert!(taken.iter().all(|d| d.deliveries == 1));
    assert_eq!(queue.status(&job).await.unwrap().in_flight, 2);

    // The first page found two links, one of them the other input URL.
    let links = [
        found("https://a.test/next", seed),
        found("https://b.test/", seed),
    ];
    let done = queue
        .complete(
            &job,
            "w1",
            &taken[0].id,
            taken[0].seq,
            b"page a",
            false,
            &links,
        )
        .await
        .unwrap();
    assert_eq!(done, Completion::Applied { added: 1 });
    let failed = queue
        .complete(&job, "w1", &taken[1].id, taken[1].seq, b"page b", true, &[])
        .await
        .unwrap();
    assert!(failed.is_applied());

    let next = queue.take(&job, "w2", 10, Duration::ZERO).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].item, found("https://a.test/next", seed));
    assert_eq!(next[0].seq, 3);

    let results = queue
        .read_results(&job, "collector", 10, Duration::ZERO)
        .await
        .unwrap();
    let got: Vec<(u64, &[u8])> = results.iter().map(|r| (r.seq, &r.payload[..])).collect();
    assert_eq!(got, [(1, &b"page a"[..]), (2, &b"page b"[..])]);
    let ids: Vec<String> = results.iter().map(|r| r.id.clone()).collect();
    queue.ack_results(&job, &ids).await.unwrap();
    assert!(
        queue
            .read_results(&job, "collector", 10, Duration::from_millis(50))
            .await
            .unwrap()
            .is_empty()
    );

    let status = queue.status(&job).await.unwrap();
    assert_eq!(
        (status.queued, status.in_flight, status.done, status.failed),
        (0, 1, 1, 1)
    );
    assert_eq!((status.results_waiting, status.enqueued), (0, 3));
}

#[tokio::test]
async fn work_of_a_silent_worker_is_reclaimed_and_its_late_result_dropped() {
    let server = RedisServer::start();
    let queue = connect_idle(&server.url(), 4 * IDLE).await;
    let job = new_job(&queue, "reclaim").await;
    queue
        .enqueue(&job, &[item("https://a.test/")])
        .await
        .unwrap();

    let mine = queue.take(&job, "dead", 1, Duration::ZERO).await.unwrap();
    assert_eq!(mine.len(), 1);
    // Not yet idle long enough: nobody else gets it.
    assert!(
        queue
            .take(&job, "alive", 1, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );

    let stolen = take_within(&queue, &job, "alive").await;
    assert_eq!(stolen.len(), 1);
    assert_eq!(stolen[0].id, mine[0].id);
    assert_eq!(stolen[0].deliveries, 2);

    // The old owner was only slow: its result is refused, nothing published.
    let late = queue
        .complete(&job, "dead", &mine[0].id, mine[0].seq, b"late", false, &[])
        .await
        .unwrap();
    assert_eq!(late, Completion::NotOwner);
    assert_eq!(queue.results_len(&job).await.unwrap(), 0);
    assert!(
        queue
            .touch(&job, "dead", &[mine[0].id.clone()])
            .await
            .unwrap()
            .is_empty()
    );

    let applied = queue
        .complete(
            &job,
            "alive",
            &stolen[0].id,
            stolen[0].seq,
            b"on time",
            false,
            &[],
        )
        .await
        .unwrap();
    assert!(applied.is_applied());
    // Completing twice publishes nothing more.
    let again = queue
        .complete(
            &job,
            "alive",
            &stolen[0].id,
            stolen[0].seq,
            b"twice",
            false,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(again, Completion::NotOwner);
    let results = queue
        .read_results(&job, "collector", 10, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].payload, b"on time");
}

#[tokio::test]
async fn touched_work_is_not_taken_and_delivery_counts_grow() {
    let server = RedisServer::start();
    let idle = 4 * IDLE;
    let queue = connect_idle(&server.url(), idle).await;
    let job = new_job(&queue, "touch").await;
    queue
        .enqueue(&job, &[item("https://slow.test/")])
        .await
        .unwrap();
    let held = queue.take(&job, "slow", 1, Duration::ZERO).await.unwrap();
    let ids = vec![held[0].id.clone()];

    // Two claim idle times, touched every eighth of one: never stolen.
    let until = Instant::now() + 2 * idle;
    while Instant::now() < until {
        assert_eq!(queue.touch(&job, "slow", &ids).await.unwrap(), ids);
        assert!(
            queue
                .take(&job, "other", 1, Duration::ZERO)
                .await
                .unwrap()
                .is_empty()
        );
        tokio::time::sleep(idle / 8).await;
    }

    // Left alone, it is handed out again and again, each time counted.
    let mut counts = vec![held[0].deliveries];
    for consumer in ["other", "third"] {
        let taken = take_within(&queue, &job, consumer).await;
        assert_eq!(taken[0].id, ids[0]);
        counts.push(taken[0].deliveries);
    }
    assert_eq!(counts, [1, 2, 3]);
}

#[tokio::test]
async fn released_work_is_taken_at_once_and_not_counted_as_a_delivery() {
    let server = RedisServer::start();
    // Far past the test: only a release makes the entries claimable.
    let queue = connect_idle(&server.url(), Duration::from_secs(300)).await;
    let job = new_job(&queue, "release").await;
    queue
        .enqueue(&job, &[item("https://a.test/"), item("https://b.test/")])
        .await
        .unwrap();
    let held = queue
        .take(&job, "stopping", 2, Duration::ZERO)
        .await
        .unwrap();
    let ids: Vec<String> = held.iter().map(|d| d.id.clone()).collect();
    // Another consumer's release gives back nothing of these.
    assert!(queue.release(&job, "other", &ids).await.unwrap().is_empty());
    assert_eq!(queue.release(&job, "stopping", &ids).await.unwrap(), ids);

    // Handed out again at once, as the first delivery it still is; given
    // back once more by its new holder, still the first.
    let taken = queue.take(&job, "next", 2, Duration::ZERO).await.unwrap();
    let counts: Vec<u64> = taken.iter().map(|d| d.deliveries).collect();
    assert_eq!(counts, [1, 1]);
    queue.release(&job, "next", &ids[..1]).await.unwrap();
    let taken = queue.take(&job, "last", 2, Duration::ZERO).await.unwrap();
    assert_eq!((taken.len(), taken[0].deliveries), (1, 1));
}

#[tokio::test]
async fn a_closed_job_takes_no_input_and_drains_then_finishes() {
    let server = RedisServer::start();
    let queue = connect(&server.url()).await;
    let job = new_job(&queue, "drain").await;
    queue
        .enqueue(&job, &[item("https://a.test/")])
        .await
        .unwrap();
    let seqs = queue
        .add_results(&job, &[b"not a url", b"nor this"])
        .await
        .unwrap();
    assert_eq!(seqs, [2, 3]);
    queue.close(&job).await.unwrap();

    let refused = queue
        .enqueue(&job, &[item("https://b.test/")])
        .await
        .unwrap_err();
    assert!(matches!(refused, QueueError::Closed(_)), "{refused}");
    assert!(!refused.is_retryable());
    let refused = queue.add_results(&job, &[b"late"]).await.unwrap_err();
    assert!(matches!(refused, QueueError::Closed(_)), "{refused}");

    let status = queue.status(&job).await.unwrap();
    assert!(status.closed && !status.drained());
    let taken = queue.take(&job, "w", 10, Duration::ZERO).await.unwrap();
    assert!(
        !queue.status(&job).await.unwrap().drained(),
        "in flight is not drained"
    );
    // A crawl goes on after close: found links still join.
    let done = queue
        .complete(
            &job,
            "w",
            &taken[0].id,
            taken[0].seq,
            b"a",
            false,
            &[found("https://a.test/x", "https://a.test/")],
        )
        .await
        .unwrap();
    assert_eq!(done, Completion::Applied { added: 1 });
    let taken = queue.take(&job, "w", 10, Duration::ZERO).await.unwrap();
    assert_eq!(taken[0].seq, 4);
    queue
        .complete(&job, "w", &taken[0].id, taken[0].seq, b"x", false, &[])
        .await
        .unwrap();

    let status = queue.status(&job).await.unwrap();
    assert!(status.drained() && !status.finished(), "{status}");
    assert_eq!((status.done, status.failed, status.direct), (2, 2, 2));
    let results = queue
        .read_results(&job, "c", 10, Duration::ZERO)
        .await
        .unwrap();
    let mut seqs: Vec<u64> = results.iter().map(|r| r.seq).collect();
    seqs.sort();
    assert_eq!(seqs, [1, 2, 3, 4]);
    let ids: Vec<String> = results.into_iter().map(|r| r.id).collect();
    queue.ack_results(&job, &ids).await.unwrap();
    assert!(queue.status(&job).await.unwrap().finished());
}

#[tokio::test]
async fn delete_refuses_an_unfinished_job_and_then_removes_every_key() {
    let server = RedisServer::start();
    let queue = connect(&server.url()).await;
    let job = new_job(&queue, "gone").await;
    let other = new_job(&queue, "kept").await;
    queue
        .enqueue(&job, &[item("https://a.test/")])
        .await
        .unwrap();
    queue
        .enqueue(&other, &[item("https://a.test/")])
        .await
        .unwrap();

    let listed: Vec<String> = queue
        .jobs()
        .await
        .unwrap()
        .into_iter()
        .map(|(job, _)| job.name().to_owned())
        .collect();
    assert_eq!(listed, ["gone", "kept"]);

    let refused = queue.delete(&job, false).await.unwrap_err();
    let message = refused.to_string();
    assert!(
        matches!(refused, QueueError::NotFinished { .. }),
        "{message}"
    );
    assert!(
        message.contains("1 queued") && !message.contains('\n'),
        "{message}"
    );

    queue.delete(&job, true).await.unwrap();
    let mut conn = raw(&server).await;
    let left: Vec<String> = redis::cmd("KEYS")
        .arg("scriptscrape:{gone}*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
    let jobs = queue.jobs().await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].0.name(), "kept");
    let err = queue.status(&job).await.unwrap_err();
    assert!(matches!(err, QueueError::NoSuchJob(_)), "{err}");
    let err = queue
        .enqueue(&job, &[item("https://b.test/")])
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::NoSuchJob(_)), "{err}");

    // Made again by another process with other buckets: this handle's
    // remembered count is stale, and the seen-set keys follow the new one.
    let elsewhere = connect(&server.url()).await;
    assert!(
        elsewhere
            .create_job(&job, JobOptions { buckets: 4 })
            .await
            .unwrap()
    );
    let added = queue
        .enqueue(&job, &[item("https://a.test/")])
        .await
        .unwrap();
    assert_eq!(added, [Some(1)]);
    let seen: Vec<String> = redis::cmd("KEYS")
        .arg("scriptscrape:{gone}:seen:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(seen.len(), 1);
    let bucket: u32 = seen[0].rsplit(':').next().unwrap().parse().unwrap();
    assert!(bucket < 4, "{seen:?}");
    queue.delete(&job, true).await.unwrap();

    // A finished job goes without force.
    queue.close(&other).await.unwrap();
    let taken = queue.take(&other, "w", 1, Duration::ZERO).await.unwrap();
    queue
        .complete(&other, "w", &taken[0].id, taken[0].seq, b"r", false, &[])
        .await
        .unwrap();
    let results = queue
        .read_results(&other, "c", 10, Duration::ZERO)
        .await
        .unwrap();
    queue
        .ack_results(&other, &[results[0].id.clone()])
        .await
        .unwrap();
    queue.delete(&other, false).await.unwrap();
    let size: u64 = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
    assert_eq!(size, 0);
}

#[tokio::test]
async fn a_job_that_does_not_exist_is_named_in_the_error() {
    let server = RedisServer::start();
    let queue = connect(&server.url()).await;
    let job = Job::new("never-made").unwrap();
    for err in [
        queue
            .enqueue(&job, &[item("https://a.test/")])
            .await
            .unwrap_err(),
        queue.take(&job, "w", 1, Duration::ZERO).await.unwrap_err(),
        queue.close(&job).await.unwrap_err(),
        queue.status(&job).await.unwrap_err(),
    ] {
        assert!(matches!(err, QueueError::NoSuchJob(_)), "{err}");
        assert!(err.to_string().contains("never-made"), "{err}");
    }
}

#[tokio::test]
async fn a_restarted_collector_is_handed_what_it_never_acknowledged() {
    let server = RedisServer::start();
    let queue = connect(&server.url()).await;
    let job = new_job(&queue, "collect").await;
    queue
        .add_results(&job, &[b"one", b"two", b"three"])
        .await
        .unwrap();

    let first = queue
        .read_results(&job, "collector", 2, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    queue
        .ack_results(&job, &[first[0].id.clone()])
        .await
        .unwrap();
    // Killed before writing the second: a new process, the same name.
    drop(queue);
    let queue = connect(&server.url()).await;
    let again = queue
        .read_results(&job, "collector", 10, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(again, first[1..]);
    let rest = queue
        .read_results(&job, "collector", 10, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].payload, b"three");
}

/// A read through the group as `consumer` whose reply nobody sees: what
/// a reply lost with the connection leaves behind (the entries are
/// pending for the consumer, which does not know it has them).
async fn lost_read(server: &RedisServer, key: &str, group: &str, consumer: &str) {
    let reply: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(group)
        .arg(consumer)
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg(key)
        .arg(">")
        .query_async(&mut raw(server).await)
        .await
        .unwrap();
    assert_ne!(reply, redis::Value::Nil, "nothing to read");
}

#[tokio::test]
async fn results_a_lost_reply_handed_the_collector_are_read_again() {
    let server = RedisServer::start();
    let queue = connect(&server.url()).await;
    let job = new_job(&queue, "lost-results").await;
    queue.add_results(&job, &[b"one"]).await.unwrap();
    let first = queue
        .read_results(&job, "collector", 10, Duration::ZERO)
        .await
        .unwrap();
    queue
        .ack_results(&job, &[first[0].id.clone()])
        .await
        .unwrap();
    assert!(
        queue
            .read_results(&job, "collector", 10, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );

    queue.add_results(&job, &[b"two"]).await.unwrap();
    lost_read(
        &server,
        "scriptscrape:{lost-results}:results",
        "collect",
        "collector",
    )
    .await;
    // Nothing new: the next read looks at what is pending again.
    let mut read = Vec::new();
    for _ in 0..3 {
        let results = queue
            .read_results(&job, "collector", 10, Duration::ZERO)
            .await
            .unwrap();
        let ids: Vec<String> = results.iter().map(|r| r.id.clone()).collect();
        queue.ack_results(&job, &ids).await.unwrap();
        read.extend(results);
    }
    let payloads: Vec<&[u8]> = read.iter().map(|r| r.payload.as_slice()).collect();
    assert_eq!(payloads, [b"two"]);
}

#[tokio::test]
async fn work_a_lost_reply_handed_a_worker_is_given_back_when_it_runs_dry() {
    use scriptscrape::queue::worker::{Held, Worker};
    let server = RedisServer::start();
    // Far past the test: only a give-back brings the lost entry back.
    let queue = connect_idle(&server.url(), Duration::from_secs(300)).await;
    let job = new_job(&queue, "lost-work").await;
    queue
        .enqueue(&job, &[item("https://a.test/"), item("https://b.test/")])
        .await
        .unwrap();
    queue.close(&job).await.unwrap();
    lost_read(&server, "scriptscrape:{lost-work}:work", "workers", "w").await;

    let worker = Worker {
        queue: queue.clone(),
        job: job.clone(),
        consumer: "w".into(),
        held: std::sync::Arc::new(Held::default()),
        stop: scriptscrape::run::stop::Stop::new(),
        max_held: 10,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(10);
    let taker = tokio::spawn(async move { worker.take(tx).await });
    let mut urls = Vec::new();
    for _ in 0..2 {
        let d = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("handed out within 10 s")
            .expect("a delivery");
        urls.push(d.item.url);
        // Not counted as a delivery that failed.
        assert_eq!(d.deliveries, 1, "{}", urls[urls.len() - 1]);
    }
    urls.sort();
    assert_eq!(urls, ["https://a.test/", "https://b.test/"]);
    taker.abort();
}

#[tokio::test]
async fn a_worker_ending_gives_back_what_it_was_handed_unseen() {
    use scriptscrape::queue::worker::{Held, Worker};
    let server = RedisServer::start();
    let queue = connect_idle(&server.url(), Duration::from_secs(300)).await;
    let job = new_job(&queue, "unseen").await;
    queue
        .enqueue(&job, &[item("https://a.test/")])
        .await
        .unwrap();
    // A take cut short by a stop: Redis handed the entry over, the
    // worker never saw it.
    lost_read(&server, "scriptscrape:{unseen}:work", "workers", "w").await;
    let worker = Worker {
        queue: queue.clone(),
        job: job.clone(),
        consumer: "w".into(),
        held: std::sync::Arc::new(Held::default()),
        stop: scriptscrape::run::stop::Stop::new(),
        max_held: 10,
    };
    worker.give_back(None).await;
    let taken = queue.take(&job, "next", 10, Duration::ZERO).await.unwrap();
    assert_eq!(taken.len(), 1, "not given back");
    assert_eq!(taken[0].deliveries, 1);
    // Given back twice, counted off once.
    queue
        .release(&job, "next", &[taken[0].id.clone()])
        .await
        .unwrap();
    let again = queue
        .release(&job, "next", &[taken[0].id.clone()])
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    let taken = queue.take(&job, "last", 10, Duration::ZERO).await.unwrap();
    assert_eq!(taken[0].deliveries, 1);
}

#[tokio::test]
async fn workers_wait_for_room_while_results_pile_up() {
    let server = RedisServer::start();
    let queue = connect(&server.url()).await;
    let job = new_job(&queue, "pressure").await;
    queue
        .add_results(&job, &[b"1", b"2", b"3", b"4", b"5"])
        .await
        .unwrap();
    assert_eq!(queue.results_len(&job).await.unwrap(), 5);

    let started = Instant::now();
    let room = queue
        .wait_for_room(&job, 3, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(!room, "5 results waiting is over a bound of 3");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");

    // The collector catches up while a worker waits.
    let waiting = tokio::spawn({
        let queue = queue.clone();
        let job = job.clone();
        async move { queue.wait_for_room(&job, 3, Duration::from_secs(10)).await }
    });
    let results = queue
        .read_results(&job, "c", 2, Duration::ZERO)
        .await
        .unwrap();
    let ids: Vec<String> = results.into_iter().map(|r| r.id).collect();
    queue.ack_results(&job, &ids).await.unwrap();
    assert!(waiting.await.unwrap().unwrap());
    assert_eq!(queue.results_len(&job).await.unwrap(), 3);
}

#[tokio::test]
async fn queued_work_and_the_seen_set_survive_a_redis_restart() {
    let mut server = RedisServer::start_with(RedisOptions::default().append_only());
    let queue = connect(&server.url()).await;
    let job = new_job(&queue, "persist").await;
    let urls: Vec<WorkItem> = (0..100)
        .map(|n| item(&format!("https://a.test/{n}")))
        .collect();
    queue.enqueue(&job, &urls).await.unwrap();
    let taken = queue.take(&job, "w", 10, Duration::ZERO).await.unwrap();
    assert_eq!(taken.len(), 10);

    // SIGKILL: only what was fsynced to the append-only file survives.
    server.kill();
    server.restart();
    let queue = connect(&server.url()).await;
    let status = queue.status(&job).await.unwrap();
    assert_eq!(
        (status.queued, status.in_flight, status.enqueued),
        (90, 10, 100)
    );
    let again = queue.enqueue(&job, &urls).await.unwrap();
    assert!(
        again.iter().all(Option::is_none),
        "seen-set lost: {again:?}"
    );
    // The dead worker's work is reclaimed, with its count of deliveries.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut reclaimed = Vec::new();
    while reclaimed.len() < 10 {
        assert!(
            Instant::now() < deadline,
            "only {} reclaimed",
            reclaimed.len()
        );
        let got = queue.take(&job, "w2", 10, Duration::ZERO).await.unwrap();
        reclaimed.extend(got.into_iter().filter(|d| d.deliveries == 2).map(|d| d.id));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut expected: Vec<String> = taken.into_iter().map(|d| d.id).collect();
    expected.sort();
    reclaimed.sort();
    assert_eq!(reclaimed, expected);
}

#[tokio::test]
async fn a_password_in_the_url_is_used_and_never_shown() {
    let server = RedisServer::start_with(RedisOptions::default().password("s3cret-pw"));
    let queue = connect(&server.url()).await;
    assert!(
        queue
            .create_job(&Job::new("auth").unwrap(), JobOptions::default())
            .await
            .unwrap()
    );
    assert!(
        !queue.shown_url().contains("s3cret"),
        "{}",
        queue.shown_url()
    );

    let wrong = format!("redis://:wr0ng-pw@127.0.0.1:{}/", server.port());
    let err = Queue::connect(&wrong, QueueOptions::default())
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        !err.is_retryable(),
        "a wrong password is not an outage: {message}"
    );
    assert!(
        !message.contains("wr0ng") && !message.contains("s3cret"),
        "{message}"
    );
    assert!(message.contains("***@127.0.0.1"), "{message}");

    let none = format!("redis://127.0.0.1:{}/", server.port());
    let queue = Queue::connect(&none, QueueOptions::default()).await;
    let err = match queue {
        // Redis may accept the connection and refuse the first command.
        Ok(queue) => queue.jobs().await.unwrap_err(),
        Err(err) => err,
    };
    assert!(!err.is_retryable(), "{err}");
}

#[tokio::test]
async fn redis_down_is_a_retryable_error_and_work_goes_on_when_it_is_back() {
    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = Queue::connect(
        &format!("redis://127.0.0.1:{port}/"),
        QueueOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(matches!(err, QueueError::Unavailable { .. }), "{err}");

    let mut server = RedisServer::start_with(RedisOptions::default().append_only());
    let queue = connect(&server.url()).await;
    let job = new_job(&queue, "outage").await;
    queue
        .enqueue(&job, &[item("https://a.test/")])
        .await
        .unwrap();
    server.stop();
    let err = queue.status(&job).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let err = queue.status(&job).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");

    // The same handle reconnects by itself once Redis is back.
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        match queue.status(&job).await {
            Ok(status) => break status,
            Err(err) if err.is_retryable() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("not back after restart: {err}"),
        }
    };
    assert_eq!(status.queued, 1);
}

#[tokio::test]
async fn the_seen_set_is_stored_as_intsets() {
    let server = RedisServer::start();
    let queue = connect(&server.url()).await;
    let job = Job::new("compact").unwrap();
    // 5,000 URLs in 16 buckets: about 312 a bucket, under Redis's 512.
    queue
        .create_job(&job, JobOptions { buckets: 16 })
        .await
        .unwrap();
    let urls: Vec<WorkItem> = (0..5000)
        .map(|n| item(&format!("https://site{}.test/page/{n}", n % 37)))
        .collect();
    for batch in urls.chunks(700) {
        queue.enqueue(&job, batch).await.unwrap();
    }
    assert_eq!(queue.status(&job).await.unwrap().enqueued, 5000);

    let mut conn = raw(&server).await;
    let mut members = 0;
    for bucket in 0..16 {
        let key = format!("scriptscrape:{{compact}}:seen:{bucket}");
        let encoding: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(encoding, "intset", "{key}");
        let n: u64 = redis::cmd("SCARD")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        members += n;
    }
    assert_eq!(members, 5000);
}
