//! The Lua scripts that make each queue step atomic.
//!
//! Redis runs a script with no other command in between, which is what
//! makes "mark seen and queue", "publish and acknowledge" one step. Redis
//! does not roll a script back on an error, so each script makes every
//! check that can refuse (job gone, closed, bucket count changed, entry no
//! longer ours) before its first write; Redis itself refuses a script for
//! lack of memory only at its first write, for the same reason. A script's
//! writes reach the append-only file and replicas as one MULTI/EXEC, so
//! they survive a crash whole or not at all. Every key a script touches is
//! passed in KEYS, and all of them share the job's hash tag.
//!
//! Errors a script returns start with a code of ours: `NOJOB` (the job's
//! meta hash is missing), `CLOSED`, `BUCKETS <n>` (the caller's cached
//! bucket count is stale: the job was deleted and created again). Each has
//! words after its code: Redis 7 turns an error of one word into `ERR
//! word`, hiding the code.

use std::sync::LazyLock;

use redis::Script;

/// The steps shared by `enqueue` and `complete`, as a literal so
/// `concat!` can put it in front of both.
macro_rules! add_new_lua {
    () => {
        r#"
-- The error to return, before any write, if the job is gone or the
-- caller's bucket count is not the job's.
local function job_error(meta, buckets)
  local actual = redis.call('HGET', meta, 'buckets')
  if not actual then
    return redis.error_reply('NOJOB the job does not exist')
  end
  if actual ~= buckets then
    return redis.error_reply('BUCKETS ' .. actual)
  end
  return nil
end

-- Adds the new items of a batch: KEYS from key_at on hold one seen-set key
-- per item; ARGV from arg_at on, six values per item: member, url, depth,
-- seed ('' when it is the url itself), has_referrer ('1' or '0'),
-- referrer. Returns the seq given to each item, 0 for one already seen.
local function add_new(meta, work, key_at, arg_at, count)
  local seqs = {}
  local added = 0
  for i = 0, count - 1 do
    local a = arg_at + i * 6
    local seq = 0
    if redis.call('SADD', KEYS[key_at + i], ARGV[a]) == 1 then
      seq = redis.call('HINCRBY', meta, 'seq', 1)
      local fields = {'url', ARGV[a + 1], 'seq', seq, 'depth', ARGV[a + 2]}
      if ARGV[a + 3] ~= '' then
        fields[#fields + 1] = 'seed'
        fields[#fields + 1] = ARGV[a + 3]
      end
      if ARGV[a + 4] == '1' then
        fields[#fields + 1] = 'referrer'
        fields[#fields + 1] = ARGV[a + 5]
      end
      redis.call('XADD', work, '*', unpack(fields))
      added = added + 1
    end
    seqs[i + 1] = seq
  end
  if added > 0 then
    redis.call('HINCRBY', meta, 'enqueued', added)
  end
  return seqs
end
"#
    };
}

/// Creates a job if it does not exist. KEYS: meta, work, results. ARGV:
/// buckets. Returns 1 if created, 0 if it existed.
pub(crate) static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
-- Groups start at 0 so they deliver every entry. A stream could outlive
-- its meta hash only if a delete was cut short; its group is kept.
for _, group in ipairs({{KEYS[2], 'workers'}, {KEYS[3], 'collect'}}) do
  local reply = redis.pcall('XGROUP', 'CREATE', group[1], group[2], '0', 'MKSTREAM')
  if type(reply) == 'table' and reply.err and not string.find(reply.err, 'BUSYGROUP') then
    return reply
  end
end
redis.call('HSET', KEYS[1], 'buckets', ARGV[1], 'seq', 0, 'enqueued', 0,
  'direct', 0, 'done', 0, 'failed', 0, 'closed', 0, 'created', ARGV[2])
return 1
"#,
    )
});

/// Adds work items not yet seen. KEYS: meta, work, one seen-set key per
/// item. ARGV: buckets, then six per item (see `add_new`). Returns the seq
/// of each item, 0 for those already seen.
pub(crate) static ENQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        add_new_lua!(),
        r#"
local err = job_error(KEYS[1], ARGV[1])
if err then
  return err
end
if redis.call('HGET', KEYS[1], 'closed') == '1' then
  return redis.error_reply('CLOSED the job is closed')
end
return add_new(KEYS[1], KEYS[2], 3, 2, (#ARGV - 1) / 6)
"#
    ))
});

/// Publishes results that have no work item (invalid input lines): each
/// gets a seq and counts as failed. KEYS: meta, results. ARGV: the
/// payloads. Returns their seqs.
pub(crate) static ADD_RESULTS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('NOJOB the job does not exist')
end
if redis.call('HGET', KEYS[1], 'closed') == '1' then
  return redis.error_reply('CLOSED the job is closed')
end
local seqs = {}
for i = 1, #ARGV do
  local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  redis.call('XADD', KEYS[2], '*', 'seq', seq, 'data', ARGV[i])
  seqs[i] = seq
end
redis.call('HINCRBY', KEYS[1], 'direct', #ARGV)
redis.call('HINCRBY', KEYS[1], 'failed', #ARGV)
return seqs
"#,
    )
});

/// Marks a job closed. KEYS: meta.
pub(crate) static CLOSE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('NOJOB the job does not exist')
end
redis.call('HSET', KEYS[1], 'closed', 1)
return 1
"#,
    )
});

/// Claims entries idle longer than a bound, with their delivery counts.
/// KEYS: work. ARGV: consumer, min idle in ms, cursor, count. Returns the
/// next cursor, then one {id, fields, deliveries} per entry claimed.
pub(crate) static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local reply = redis.call('XAUTOCLAIM', KEYS[1], 'workers', ARGV[1], ARGV[2],
  ARGV[3], 'COUNT', ARGV[4])
local out = {reply[1]}
for _, entry in ipairs(reply[2]) do
  -- Redis 6.2 lists entries deleted under the claim as nil; 7.0 drops them.
  if entry and entry[2] then
    local pending = redis.call('XPENDING', KEYS[1], 'workers', entry[1], entry[1], 1)
    local deliveries = 1
    if pending[1] then
      deliveries = pending[1][4]
    end
    out[#out + 1] = {entry[1], entry[2], deliveries}
  end
end
return out
"#,
    )
});

/// Resets the idle time of entries still pending for this consumer, and
/// only those: a plain XCLAIM would take back an entry another worker had
/// already claimed. KEYS: work. ARGV: consumer, then IDs. Returns the IDs
/// still held.
pub(crate) static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local held = {}
for i = 2, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], 'workers', ARGV[i], ARGV[i], 1)
  if pending[1] and pending[1][2] == ARGV[1] then
    -- JUSTID: the delivery count stays as it is.
    redis.call('XCLAIM', KEYS[1], 'workers', ARGV[1], 0, ARGV[i], 'JUSTID')
    held[#held + 1] = ARGV[i]
  end
end
return held
"#,
    )
});

/// Gives entries back: those still pending for the consumer (ARGV[1])
/// among ARGV[2..] are made look idle since long ago, so that the next
/// `take` of any worker claims them, and the delivery that gave them to
/// this consumer is taken off their count. KEYS: work. Returns the ids
/// given back (not those given back already).
pub(crate) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local released = {}
for i = 2, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], 'workers', ARGV[i], ARGV[i], 1)
  if pending[1] and pending[1][2] == ARGV[1] then
    -- A year of idleness: past any --claim-idle. The claim that takes it
    -- next adds one to its delivery count: one is taken off here, so a
    -- release is not counted as a delivery (JUSTID alone would only keep
    -- the count as it is); once only, should it be given back twice.
    if pending[1][3] < 31536000000 then
      local deliveries = math.max(pending[1][4] - 1, 0)
      redis.call('XCLAIM', KEYS[1], 'workers', ARGV[1], 0, ARGV[i], 'IDLE', 31536000000,
        'RETRYCOUNT', deliveries, 'JUSTID')
      released[#released + 1] = ARGV[i]
    end
  end
end
return released
"#,
    )
});

/// Publishes a page's result, acknowledges and deletes its work entry, and
/// queues its new links, if the entry is still pending for this consumer.
/// KEYS: meta, work, results, one seen-set key per found link. ARGV:
/// buckets, id, consumer, seq, payload, failed ('1' or '0'), then six per
/// found link. Returns {0} if not applied, else {1, seqs of the links}.
pub(crate) static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        add_new_lua!(),
        r#"
local pending = redis.call('XPENDING', KEYS[2], 'workers', ARGV[2], ARGV[2], 1)
if not pending[1] or pending[1][2] ~= ARGV[3] then
  return {0}
end
local err = job_error(KEYS[1], ARGV[1])
if err then
  return err
end
redis.call('XADD', KEYS[3], '*', 'seq', ARGV[4], 'data', ARGV[5])
redis.call('XACK', KEYS[2], 'workers', ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[2])
if ARGV[6] == '1' then
  redis.call('HINCRBY', KEYS[1], 'failed', 1)
else
  redis.call('HINCRBY', KEYS[1], 'done', 1)
end
-- Found links join even after close: close ends the input, not the crawl.
return {1, add_new(KEYS[1], KEYS[2], 4, 7, (#ARGV - 6) / 6)}
"#
    ))
});

/// Reads a job's counts in one go. KEYS: meta, work, results. Returns
/// {meta as field-value pairs, XLEN work, pending in workers, XLEN results}.
pub(crate) static STATUS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local meta = redis.call('HGETALL', KEYS[1])
if #meta == 0 then
  return redis.error_reply('NOJOB the job does not exist')
end
local pending = redis.call('XPENDING', KEYS[2], 'workers')
return {meta, redis.call('XLEN', KEYS[2]), pending[1], redis.call('XLEN', KEYS[3])}
"#,
    )
});

/// The collector's lease on a job: taken (or renewed) when free or held
/// by the same collector (ARGV[1], its token), for ARGV[2] ms. KEYS: the
/// lease. Returns '' when held now, else the other holder's token.
pub(crate) static LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return holder
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ''
"#,
    )
});
