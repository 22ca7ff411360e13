//! [`RedisSource`]: the cluster's [`EventSource`] on Redis Streams.
//!
//! # Data model (prefix `P`, `--redis-prefix`)
//!
//! - `P:meta`, a hash: the current generation's `token` (16 hex digits),
//!   `gen` (generations started), `n` (the last event number handed out),
//!   `t` (the last time stamped, µs), `cum` (bytes of every event added in
//!   the generation), `oldest` (number of the oldest retained event),
//!   `evicted` (time of the newest trimmed entry, `-1` for none).
//! - `P:s:<token>`, one stream per generation: entry `<n>-0` with fields
//!   `f` (the encoded frame without its `id:` line), `t` (type), `ts`
//!   (time, µs), `c` (`cum` before this entry) and `i` (caller id, only
//!   when there is one). Entry ids are the event numbers, so "after id N"
//!   is `XRANGE (N-0` / `XREAD … N-0`. An event counts its body, its caller
//!   id and 40 bytes against `--max-bytes`.
//! - `P:i:<token>`, a hash: caller id → number of its newest retained
//!   event; `P:l:<token>`, a list of `<n>:<id>` in publish order, so
//!   trimming forgets the ids it trimmed without reading the stream.
//! - `P:control`, a short stream: one entry per new generation. Tails block
//!   on it and on the generation's stream in one `XREAD`, so a reset reaches
//!   every node at once.
//! - `P:r:<key>`, for a minute: the result of a publish request (see
//!   "Scripts").
//!
//! # Scripts
//!
//! Every write is one Lua script (`lua/*.lua`, each prefixed with
//! `lua/prelude.lua`), so numbering, stamping, appending and trimming are
//! atomic: `publish` (take `count` numbers with `HINCRBY`, stamp the batch
//! with Redis's `TIME` clamped to never go back, `XADD` each entry, trim to
//! `--capacity` events and `--max-bytes` bytes — the cut is found from the
//! entries' `c` by binary search, so trimming reads O(log n) entries, not
//! the trimmed ones — recording the newest trimmed time), `reset` (new token, old stream deleted, control entry), and
//! `head` (read the state, optionally find a caller id or binary-search a
//! time). Each may start a generation: when Redis holds none, or when it
//! holds fewer events of a token than the calling node has seen (see
//! [`Seen`]). This is centrifuge's epoch + offset scheme (one script
//! assigns both) with its gap closed: centrifuge keeps the epoch when a
//! failover loses the newest offsets and hands the same offsets out again.
//!
//! Times are microseconds in Redis (Lua numbers are doubles, exact to 2^53)
//! and nanoseconds on the nodes.
//!
//! Connections: one multiplexed connection for requests, reconnected on
//! failure, with a 1 s connect and 2 s response timeout (a publish while
//! Redis is down fails within about a second); a second one for the tail's
//! blocking `XREAD`. Needs Redis 6.2 or later (exclusive `XRANGE` bounds,
//! `XTRIM MINID`), a single primary (not Redis Cluster).

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Script, Value};

use super::{
    Appended, BoxFuture, EventSource, Lookup, Retention, Seen, SourceError, SourceEvent,
    SourceHead, TailRead,
};
use crate::error::{ConfigError, Setting};
use crate::EncodedEvent;

const PRELUDE: &str = include_str!("lua/prelude.lua");

/// Response timeout of ordinary requests.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Connect timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The Redis Streams event source (see the module docs).
pub struct RedisSource {
    client: Client,
    prefix: String,
    retention: Retention,
    publish: Script,
    reset: Script,
    head: Script,
    requests: Mutex<Option<MultiplexedConnection>>,
    tail_connection: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    /// The control stream's last entry id at the last `sync`.
    control_seen: Mutex<String>,
}

impl std::fmt::Debug for RedisSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSource")
            .field("prefix", &self.prefix)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl RedisSource {
    /// A source on the Redis at `url` (`redis://HOST:PORT/DB`), keys under
    /// `prefix`, history bounded by `retention`. Connects lazily.
    ///
    /// # Errors
    ///
    /// When `url` is not a Redis URL or `prefix` not a word.
    pub fn new(url: &str, prefix: &str, retention: Retention) -> Result<RedisSource, ConfigError> {
        let client = Client::open(url).map_err(|error| {
            ConfigError::new(Setting::Cluster, format!("invalid --redis URL: {error}"))
        })?;
        if prefix.is_empty() || prefix.contains(char::is_whitespace) {
            return Err(ConfigError::new(
                Setting::Cluster,
                "--redis-prefix must be a non-empty word",
            ));
        }
        let script = |body: &str| Script::new(&format!("{PRELUDE}\n{body}"));
        Ok(RedisSource {
            client,
            prefix: prefix.to_owned(),
            retention,
            publish: script(include_str!("lua/publish.lua")),
            reset: script(include_str!("lua/reset.lua")),
            head: script(include_str!("lua/head.lua")),
            requests: Mutex::new(None),
            tail_connection: tokio::sync::Mutex::new(None),
            control_seen: Mutex::new("$".to_owned()),
        })
    }

    fn meta_key(&self) -> String {
        format!("{}:meta", self.prefix)
    }

    fn control_key(&self) -> String {
        format!("{}:control", self.prefix)
    }

    fn stream_key(&self, token: u64) -> String {
        format!("{}:s:{token:016x}", self.prefix)
    }

    async fn connect(
        &self,
        response_timeout: Duration,
    ) -> Result<MultiplexedConnection, SourceError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(response_timeout));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(unavailable)
    }

    async fn connection(&self) -> Result<MultiplexedConnection, SourceError> {
        if let Some(connection) = lock(&self.requests).clone() {
            return Ok(connection);
        }
        let connection = self.connect(RESPONSE_TIMEOUT).await?;
        *lock(&self.requests) = Some(connection.clone());
        Ok(connection)
    }

    /// Runs a request; drops the connection on failure so the next one
    /// reconnects.
    ///
    /// A connection that was cached and turns out dropped (Redis restarted,
    /// a proxy cut it) is replaced and the request sent once more: `publish`
    /// carries a request key, so a resent batch is applied once; `head`
    /// only reads (or starts the generation a first call would have); a
    /// resent `reset` may start one more generation, which only ends the
    /// streams again.
    async fn request(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<Value, SourceError> {
        let mut retried = false;
        loop {
            let cached = lock(&self.requests).is_some();
            let mut connection = self.connection().await?;
            match invocation.invoke_async::<Value>(&mut connection).await {
                Ok(value) => return Ok(value),
                Err(error) if is_transport(&error) => {
                    *lock(&self.requests) = None;
                    if cached && !retried {
                        retried = true;
                        continue;
                    }
                    return Err(unavailable(error));
                }
                Err(error) => return Err(SourceError::Protocol(error.to_string())),
            }
        }
    }

    async fn head_inner(&self, seen: Seen, lookup: Lookup) -> Result<SourceHead, SourceError> {
        let (mode, value) = match &lookup {
            Lookup::Nothing => ("", String::new()),
            Lookup::CallerId(id) => ("id", id.clone()),
            Lookup::Timestamp(nanos) => ("ts", nanos.div_ceil(1000).to_string()),
        };
        let mut invocation = self.head.prepare_invoke();
        invocation
            .key(self.meta_key())
            .key(self.control_key())
            .arg(&self.prefix)
            .arg(new_token())
            .arg(format!("{:016x}", seen.token))
            .arg(seen.number)
            .arg(mode)
            .arg(value);
        let reply = self.request(&invocation).await?;
        let items = array(reply)?;
        if items.len() != 9 {
            return Err(SourceError::Protocol(format!(
                "head: {} items",
                items.len()
            )));
        }
        let evicted = int(&items[4])?;
        let found = int(&items[7])?;
        let head = SourceHead {
            token: token(&items[0])?,
            generation: uint(&items[1])?,
            last: uint(&items[2])?,
            oldest: uint(&items[3])?,
            evicted_timestamp: (evicted >= 0).then(|| evicted as u64 * 1000),
            retained: uint(&items[5])?,
            retained_bytes: uint(&items[6])?,
            found: (found >= 0).then_some(found as u64),
        };
        if let Value::BulkString(control) = &items[8] {
            let mut seen = lock(&self.control_seen);
            if seen.as_str() == "$" {
                *seen = String::from_utf8_lossy(control).into_owned();
            }
        }
        Ok(head)
    }
}

impl EventSource for RedisSource {
    fn publish<'a>(
        &'a self,
        events: &'a [EncodedEvent],
        seen: Seen,
    ) -> BoxFuture<'a, Result<Appended, SourceError>> {
        Box::pin(async move {
            let mut invocation = self.publish.prepare_invoke();
            invocation
                .key(self.meta_key())
                .key(self.control_key())
                .arg(&self.prefix)
                .arg(new_token())
                .arg(format!("{:016x}", seen.token))
                .arg(seen.number)
                .arg(self.retention.events)
                .arg(self.retention.bytes)
                .arg(events.len())
                .arg(new_token());
            for event in events {
                let tag_type = event_type_of(event);
                invocation
                    .arg(tag_type)
                    .arg(event.id().unwrap_or(""))
                    .arg(event.body().as_ref());
            }
            let items = array(self.request(&invocation).await?)?;
            if items.len() != 3 {
                return Err(SourceError::Protocol(format!(
                    "publish: {} items",
                    items.len()
                )));
            }
            Ok(Appended {
                token: token(&items[0])?,
                first: uint(&items[1])?,
                timestamp: uint(&items[2])?.saturating_mul(1000),
            })
        })
    }

    fn reset(&self, expected: Option<u64>) -> BoxFuture<'_, Result<SourceHead, SourceError>> {
        Box::pin(async move {
            let mut invocation = self.reset.prepare_invoke();
            invocation
                .key(self.meta_key())
                .key(self.control_key())
                .arg(&self.prefix)
                .arg(new_token())
                .arg(expected.map_or_else(String::new, |token| format!("{token:016x}")));
            self.request(&invocation).await?;
            self.head_inner(Seen::default(), Lookup::Nothing).await
        })
    }

    fn head(&self, seen: Seen, lookup: Lookup) -> BoxFuture<'_, Result<SourceHead, SourceError>> {
        Box::pin(self.head_inner(seen, lookup))
    }

    fn range(
        &self,
        token: u64,
        after: u64,
        max: usize,
    ) -> BoxFuture<'_, Result<Vec<SourceEvent>, SourceError>> {
        Box::pin(async move {
            let mut command = redis::cmd("XRANGE");
            command
                .arg(self.stream_key(token))
                .arg(format!("({after}-0"))
                .arg("+")
                .arg("COUNT")
                .arg(max);
            let mut retried = false;
            loop {
                let cached = lock(&self.requests).is_some();
                let mut connection = self.connection().await?;
                match command.query_async::<Value>(&mut connection).await {
                    Ok(value) => return entries(value),
                    Err(error) if is_transport(&error) => {
                        *lock(&self.requests) = None;
                        if cached && !retried {
                            retried = true;
                            continue;
                        }
                        return Err(unavailable(error));
                    }
                    Err(error) => return Err(SourceError::Protocol(error.to_string())),
                }
            }
        })
    }

    fn sync(&self, seen: Seen) -> BoxFuture<'_, Result<SourceHead, SourceError>> {
        Box::pin(async move {
            *lock(&self.control_seen) = "$".to_owned();
            self.head_inner(seen, Lookup::Nothing).await
        })
    }

    fn tail(
        &self,
        token: u64,
        after: u64,
        wait: Duration,
    ) -> BoxFuture<'_, Result<TailRead, SourceError>> {
        Box::pin(async move {
            let mut slot = self.tail_connection.lock().await;
            let mut connection = match slot.clone() {
                Some(connection) => connection,
                None => {
                    let connection = self.connect(wait + RESPONSE_TIMEOUT).await?;
                    *slot = Some(connection.clone());
                    connection
                }
            };
            let control_seen = lock(&self.control_seen).clone();
            let reply = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(1024)
                .arg("BLOCK")
                .arg(wait.as_millis().max(1) as u64)
                .arg("STREAMS")
                .arg(self.control_key())
                .arg(self.stream_key(token))
                .arg(control_seen)
                .arg(format!("{after}-0"))
                .query_async::<Value>(&mut connection)
                .await;
            let reply = match reply {
                Ok(reply) => reply,
                Err(error) => {
                    *slot = None;
                    return Err(unavailable(error));
                }
            };
            let control_key = self.control_key();
            let mut events = Vec::new();
            for (key, value) in streams(reply)? {
                if key == control_key.as_bytes() {
                    return Ok(TailRead::GenerationChanged);
                }
                events = entries(value)?;
            }
            Ok(if events.is_empty() {
                TailRead::Idle
            } else {
                TailRead::Events(events)
            })
        })
    }
}

/// The type an encoded event was published with, as subscribers filter it.
fn event_type_of(event: &EncodedEvent) -> &str {
    // The body's `event:` line, if any, is the type; none means `message`.
    let body = event.body();
    let start = if body.starts_with(b"retry: ") {
        memchr::memchr(b'\n', body).map_or(body.len(), |end| end + 1)
    } else {
        0
    };
    let rest = &body[start..];
    if let Some(line) = rest.strip_prefix(b"event: ") {
        let end = memchr::memchr(b'\n', line).unwrap_or(line.len());
        std::str::from_utf8(&line[..end]).unwrap_or(crate::frame::DEFAULT_EVENT_TYPE)
    } else {
        crate::frame::DEFAULT_EVENT_TYPE
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// True for errors of the connection (not of a command): the source is
/// unreachable and the connection must be made again.
fn is_transport(error: &redis::RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
}

fn unavailable(error: redis::RedisError) -> SourceError {
    SourceError::Unavailable(error.to_string())
}

fn protocol(what: &str) -> SourceError {
    SourceError::Protocol(what.to_owned())
}

/// A fresh generation token, as 16 hex digits.
fn new_token() -> String {
    format!("{:016x}", crate::id::new_generation_token())
}

fn array(value: Value) -> Result<Vec<Value>, SourceError> {
    match value {
        Value::Array(items) | Value::Set(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        other => Err(SourceError::Protocol(format!(
            "expected an array, got {other:?}"
        ))),
    }
}

fn bytes_of(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.as_bytes()),
        _ => None,
    }
}

fn int(value: &Value) -> Result<i64, SourceError> {
    match value {
        Value::Int(n) => Ok(*n),
        other => bytes_of(other)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| protocol("expected an integer")),
    }
}

fn uint(value: &Value) -> Result<u64, SourceError> {
    u64::try_from(int(value)?).map_err(|_| protocol("expected a non-negative integer"))
}

fn token(value: &Value) -> Result<u64, SourceError> {
    bytes_of(value)
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .filter(|text| text.len() == 16)
        .and_then(|text| u64::from_str_radix(text, 16).ok())
        .ok_or_else(|| protocol("expected a 16-hex-digit token"))
}

/// The `[key, entries]` pairs of an `XREAD` reply (RESP2 array or RESP3 map).
fn streams(reply: Value) -> Result<Vec<(Vec<u8>, Value)>, SourceError> {
    let pairs = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Map(pairs) => pairs,
        other => array(other)?
            .into_iter()
            .map(|pair| {
                let mut pair = array(pair)?.into_iter();
                match (pair.next(), pair.next()) {
                    (Some(key), Some(value)) => Ok((key, value)),
                    _ => Err(protocol("XREAD: bad stream pair")),
                }
            })
            .collect::<Result<_, _>>()?,
    };
    pairs
        .into_iter()
        .map(|(key, value)| {
            let key = bytes_of(&key)
                .ok_or_else(|| protocol("XREAD: bad key"))?
                .to_vec();
            Ok((key, value))
        })
        .collect()
}

/// Stream entries (`[[id, [field, value, …]], …]`) as events.
fn entries(value: Value) -> Result<Vec<SourceEvent>, SourceError> {
    array(value)?
        .into_iter()
        .map(|entry| {
            let mut entry = array(entry)?.into_iter();
            let (Some(id), Some(fields)) = (entry.next(), entry.next()) else {
                return Err(protocol("stream entry without fields"));
            };
            let id = bytes_of(&id).ok_or_else(|| protocol("entry id"))?;
            let number = std::str::from_utf8(id)
                .ok()
                .and_then(|id| id.split_once('-'))
                .and_then(|(n, _)| n.parse::<u64>().ok())
                .ok_or_else(|| protocol("entry id is not <n>-0"))?;
            let fields = match fields {
                Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
                other => array(other)?,
            };
            let mut event = SourceEvent {
                number,
                event_type: String::new(),
                id: None,
                body: Bytes::new(),
                timestamp: 0,
            };
            let mut fields = fields.into_iter();
            while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
                if bytes_of(&name) == Some(b"f") {
                    // The frame body: moved, not copied.
                    event.body = match value {
                        Value::BulkString(body) => Bytes::from(body),
                        other => Bytes::copy_from_slice(
                            bytes_of(&other).ok_or_else(|| protocol("frame body"))?,
                        ),
                    };
                    continue;
                }
                let value = bytes_of(&value).ok_or_else(|| protocol("field value"))?;
                match bytes_of(&name) {
                    Some(b"t") => event.event_type = String::from_utf8_lossy(value).into_owned(),
                    Some(b"i") if !value.is_empty() => {
                        event.id = Some(String::from_utf8_lossy(value).into_owned());
                    }
                    Some(b"ts") => {
                        let micros: u64 = std::str::from_utf8(value)
                            .ok()
                            .and_then(|text| text.parse().ok())
                            .ok_or_else(|| protocol("entry time"))?;
                        event.timestamp = micros.saturating_mul(1000);
                    }
                    _ => {}
                }
            }
            Ok(event)
        })
        .collect()
}
