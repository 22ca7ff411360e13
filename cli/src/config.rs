//! `ssehub serve` configuration: flags, each also an `SSEHUB_<NAME>`
//! environment variable (a flag wins over the variable).
//!
//! Durations are humantime (`15s`, `500ms`, `0` = off); sizes are bytes or
//! a number with a unit (`KiB`/`MiB`/`GiB` are powers of 1024, `KB`/`MB`/`GB`
//! of 1000, `B` bytes; case-insensitive, spaces allowed before the unit).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use ssehub::HubConfig;

/// Flags of `ssehub serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SSEHUB_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Bearer token for /admin/*. Without one a random token is generated
    /// and logged once.
    #[arg(long, env = "SSEHUB_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Bearer token required for GET /events (header or ?token=).
    #[arg(long, env = "SSEHUB_SUBSCRIBER_TOKEN", hide_env_values = true)]
    pub subscriber_token: Option<String>,

    /// Key for signed subscriber/publisher tokens (JWT): the secret for
    /// HS256/384/512, or the path of a PEM public key for RS*, PS*, ES*,
    /// EdDSA. Off when unset.
    #[arg(long, env = "SSEHUB_JWT_KEY", hide_env_values = true)]
    pub jwt_key: Option<String>,

    /// The one algorithm signed tokens must use.
    #[arg(long, env = "SSEHUB_JWT_ALG", default_value = "HS256")]
    pub jwt_alg: String,

    /// PEM certificate chain: serve HTTPS (ALPN h2 and http/1.1). Needs
    /// --tls-key. Re-read with the key on SIGHUP.
    #[arg(long, env = "SSEHUB_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "SSEHUB_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,

    /// Most concurrent HTTP/2 streams (SSE subscriptions) per connection.
    #[arg(long, env = "SSEHUB_HTTP2_MAX_STREAMS", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub http2_max_streams: u32,

    /// Ring slots (events retained), rounded up to a power of two.
    #[arg(long, env = "SSEHUB_CAPACITY", default_value_t = 4096)]
    pub capacity: usize,

    /// Ring byte budget for encoded frames.
    #[arg(long, env = "SSEHUB_MAX_BYTES", default_value = "64MiB", value_parser = parse_size)]
    pub max_bytes: usize,

    /// Keep-alive comment interval for idle streams; 0 disables.
    #[arg(long, env = "SSEHUB_KEEP_ALIVE", default_value = "15s", value_parser = parse_duration)]
    pub keep_alive: Duration,

    /// Most concurrent subscribers; more get 503.
    #[arg(long, env = "SSEHUB_MAX_SUBSCRIBERS", default_value_t = 100_000)]
    pub max_subscribers: usize,

    /// Largest compact JSON of one published event; larger is 413.
    #[arg(long, env = "SSEHUB_MAX_EVENT_BYTES", default_value = "64KiB", value_parser = parse_size)]
    pub max_event_bytes: usize,

    /// Most events in one publish request; more is 413.
    #[arg(long, env = "SSEHUB_MAX_BATCH", default_value_t = 1000)]
    pub max_batch: usize,

    /// Most event types one subscription may filter on; more is 400.
    #[arg(long, env = "SSEHUB_MAX_TYPES", default_value_t = 64)]
    pub max_types: usize,

    /// Most connections open at once; one more gets 503 and is closed.
    /// Default: 1,024 above --max-subscribers.
    #[arg(long, env = "SSEHUB_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Time a client has to send a request head (from connect to its blank
    /// line); a slower client is disconnected. Also how long a connection
    /// may stay open with no request or stream in progress.
    #[arg(long, env = "SSEHUB_HEAD_TIMEOUT", default_value = "10s", value_parser = parse_timeout)]
    pub head_timeout: Duration,

    /// How long one write may block on a client that stops reading before
    /// its connection is dropped.
    #[arg(long, env = "SSEHUB_WRITE_TIMEOUT", default_value = "30s", value_parser = parse_timeout)]
    pub write_timeout: Duration,

    /// Time a publish request's body may take to arrive; slower is 408.
    #[arg(long, env = "SSEHUB_BODY_TIMEOUT", default_value = "30s", value_parser = parse_timeout)]
    pub body_timeout: Duration,

    /// Allowed CORS origin (repeatable, or comma-separated in the variable);
    /// `*` allows any. No CORS headers when unset.
    #[arg(long, env = "SSEHUB_CORS_ORIGIN", value_delimiter = ',')]
    pub cors_origin: Vec<String>,

    /// Cluster mode: join the nodes sharing this Redis
    /// (`redis://HOST:PORT/DB`). Ids, order and history live in Redis;
    /// `--capacity` and `--max-bytes` bound the history there too.
    #[cfg(feature = "cluster")]
    #[arg(long, env = "SSEHUB_REDIS", hide_env_values = true)]
    pub redis: Option<String>,

    /// Key prefix in Redis: independent hubs on one Redis use different ones.
    #[cfg(feature = "cluster")]
    #[arg(long, env = "SSEHUB_REDIS_PREFIX", default_value = "ssehub")]
    pub redis_prefix: String,
}

impl ServeArgs {
    /// The connection cap: `--max-connections`, or 1,024 above the
    /// subscriber limit (room for publishers, metrics and health checks).
    pub fn max_connections(&self) -> usize {
        self.max_connections
            .unwrap_or_else(|| self.max_subscribers.saturating_add(1024))
    }

    /// The hub configuration these flags describe.
    ///
    /// The hub's own frame limit is set above `--max-event-bytes`: the limit
    /// applies to the event's compact JSON, and the frame around it repeats
    /// the type and id (`id:`/`event:` lines) — each at most as long as the
    /// JSON they came from — plus a few bytes of field names.
    pub fn hub_config(&self) -> HubConfig {
        HubConfig::default()
            .capacity(self.capacity)
            .max_bytes(self.max_bytes)
            .max_event_bytes(self.max_event_bytes.saturating_mul(2).saturating_add(64))
            .max_types(self.max_types)
            .max_subscribers(self.max_subscribers)
            .keep_alive((!self.keep_alive.is_zero()).then_some(self.keep_alive))
    }
}

/// Parses a size: bytes, or a number with a unit (`64KiB`, `1.5 MB`).
///
/// # Errors
///
/// A message naming the text that is not a size.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return Err(format!("{text:?} is not a size (e.g. 65536, 64KiB, 64MiB)")),
    };
    let bad = || format!("{text:?} is not a size (e.g. 65536, 64KiB, 64MiB)");
    let bytes = if number.contains('.') {
        let value: f64 = number.parse().map_err(|_| bad())?;
        (value * multiplier as f64).round() as u64
    } else {
        number
            .parse::<u64>()
            .map_err(|_| bad())?
            .checked_mul(multiplier)
            .ok_or_else(bad)?
    };
    usize::try_from(bytes).map_err(|_| bad())
}

/// Parses a humantime duration; a bare `0` means zero (off).
///
/// # Errors
///
/// A message naming the text that is not a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text)
        .map_err(|error| format!("{text:?} is not a duration (e.g. 15s, 500ms, 0): {error}"))
}

/// Parses a timeout: a humantime duration that is not zero.
///
/// # Errors
///
/// A message naming the text that is not a positive duration.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        zero if zero.is_zero() => Err(format!("{text:?}: a timeout must be above zero")),
        timeout => Ok(timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("64 mib"), Ok(64 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2KB"), Ok(2000));
        assert_eq!(parse_size("1.5MB"), Ok(1_500_000));
        for bad in ["", "KiB", "12 parsecs", "-1", "99999999999999999999GiB"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_timeout("0").is_err());
        assert_eq!(parse_timeout("2s"), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn defaults_match_the_contract() {
        let cli = Cli::try_parse_from(["serve"]).unwrap();
        let args = cli.serve;
        assert_eq!(args.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(args.capacity, 4096);
        assert_eq!(args.max_bytes, 64 << 20);
        assert_eq!(args.keep_alive, Duration::from_secs(15));
        assert_eq!(args.max_subscribers, 100_000);
        assert_eq!(args.max_event_bytes, 64 << 10);
        assert_eq!(args.max_batch, 1000);
        assert_eq!(args.max_types, 64);
        assert!(args.cors_origin.is_empty());
        assert!(args.admin_token.is_none());
        assert_eq!(args.max_connections(), 101_024);
        assert_eq!(args.head_timeout, Duration::from_secs(10));
        assert_eq!(args.write_timeout, Duration::from_secs(30));
        assert_eq!(args.body_timeout, Duration::from_secs(30));
        #[cfg(feature = "cluster")]
        {
            assert!(args.redis.is_none());
            assert_eq!(args.redis_prefix, "ssehub");
        }
        assert_eq!(args.http2_max_streams, 256);
        assert_eq!(args.jwt_alg, "HS256");
        assert!(args.jwt_key.is_none() && args.tls_cert.is_none());
        assert!(Cli::try_parse_from(["serve", "--http2-max-streams", "0"]).is_err());
        assert!(Cli::try_parse_from(["serve", "--tls-cert", "c.pem"]).is_err());
        let cli =
            Cli::try_parse_from(["serve", "--keep-alive", "0", "--cors-origin", "*"]).unwrap();
        assert_eq!(cli.serve.hub_config().keep_alive, None);
        assert_eq!(cli.serve.cors_origin, ["*"]);
    }
}
