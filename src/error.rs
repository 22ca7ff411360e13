//! Every error type ssehub returns, in one place. Display strings are short,
//! lower-case and say what was wrong.

use std::fmt;

/// Why an event could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventError {
    /// The type contains CR or LF.
    InvalidType,
    /// The id contains CR, LF or NUL.
    InvalidId,
    /// A caller-supplied id has the shape of an auto id (`<16 hex>-<digits>`),
    /// which resume would mistake for a position.
    ReservedId,
    /// The encoded frame is larger than the limit.
    TooLarge {
        /// Encoded size in bytes, id line included.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::InvalidType => f.write_str("event type must not contain CR or LF"),
            EventError::InvalidId => f.write_str("event id must not contain CR, LF or NUL"),
            EventError::ReservedId => {
                f.write_str("event id has the reserved auto-id shape <16 hex digits>-<number>")
            }
            EventError::TooLarge { size, limit } => {
                write!(
                    f,
                    "encoded event is {size} bytes, over the {limit}-byte limit"
                )
            }
        }
    }
}

impl std::error::Error for EventError {}

/// Why a publish failed. Nothing was acknowledged (an event that raced a
/// shutdown may still have reached subscribers before they ended).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishError {
    /// The event itself is invalid.
    Event(EventError),
    /// The event at `index` of a batch is invalid; the whole batch was rejected.
    InBatch {
        /// Position of the first bad event in the batch.
        index: usize,
        /// What was wrong with it.
        error: EventError,
    },
    /// The hub was shut down.
    Shutdown,
    /// A dedicated [`Publisher`](crate::Publisher) owns the writer; shared
    /// publishes are refused until it is dropped.
    WriterTaken,
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::Event(error) => error.fmt(f),
            PublishError::InBatch { index, error } => write!(f, "event {index}: {error}"),
            PublishError::Shutdown => f.write_str("hub is shut down"),
            PublishError::WriterTaken => f.write_str("a dedicated publisher owns the writer"),
        }
    }
}

impl std::error::Error for PublishError {}

impl From<EventError> for PublishError {
    fn from(error: EventError) -> Self {
        PublishError::Event(error)
    }
}

/// Why a subscription could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The resume point is no longer retained (overwritten, unknown id, or an
    /// id from another generation). Resuming would leave a gap.
    Gone(GoneReason),
    /// The hub was shut down.
    Shutdown,
    /// The subscriber limit is reached.
    TooManySubscribers {
        /// The configured limit.
        limit: usize,
    },
    /// More event types than the limit were requested.
    TooManyTypes {
        /// Number requested.
        requested: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A requested event type contains CR or LF.
    InvalidType,
}

/// Why a resume point is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GoneReason {
    /// The events after the point were overwritten; `missed` of them are lost.
    Overwritten {
        /// How many events between the point and the oldest retained one.
        missed: u64,
    },
    /// The id belongs to another generation (before a reset or a restart).
    OtherGeneration,
    /// The id is not retained in the current generation.
    UnknownId,
    /// An event at or after the timestamp was overwritten.
    TimestampOverwritten,
}

impl fmt::Display for SubscribeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscribeError::Gone(reason) => match reason {
                GoneReason::Overwritten { missed } => write!(
                    f,
                    "resume point expired: {missed} events after it were overwritten"
                ),
                GoneReason::OtherGeneration => {
                    f.write_str("resume point expired: the id is from an earlier generation")
                }
                GoneReason::UnknownId => {
                    f.write_str("resume point expired: the id is not retained")
                }
                GoneReason::TimestampOverwritten => f.write_str(
                    "resume point expired: events at or after the timestamp were overwritten",
                ),
            },
            SubscribeError::Shutdown => f.write_str("hub is shut down"),
            SubscribeError::TooManySubscribers { limit } => {
                write!(f, "subscriber limit of {limit} reached")
            }
            SubscribeError::TooManyTypes { requested, limit } => {
                write!(
                    f,
                    "{requested} event types requested, over the limit of {limit}"
                )
            }
            SubscribeError::InvalidType => f.write_str("event type must not contain CR or LF"),
        }
    }
}

impl std::error::Error for SubscribeError {}

/// Why a subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// `reset()` started a new generation.
    Reset,
    /// `shutdown()` ended the hub.
    Shutdown,
    /// The subscriber fell more than the ring behind; `missed` events are lost
    /// to it. Reconnecting from its last id gets `Gone`.
    Lagged {
        /// Events overwritten before it could read them.
        missed: u64,
    },
}

impl EndReason {
    /// A stable snake_case name, used in the final SSE comment and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Reset => "reset",
            EndReason::Shutdown => "shutdown",
            EndReason::Lagged { .. } => "lagged",
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndReason::Lagged { missed } => write!(f, "lagged: {missed} events missed"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// Which setting a [`ConfigError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Setting {
    /// A CORS origin (`--cors-origin`).
    CorsOrigin,
    /// The signed-token key or algorithm (`--jwt-key`, `--jwt-alg`).
    JwtKey,
    /// The TLS certificate or key (`--tls-cert`, `--tls-key`).
    Tls,
    /// The cluster's backend (`--redis`, `--redis-prefix`).
    Cluster,
}

impl Setting {
    fn name(self) -> &'static str {
        match self {
            Setting::CorsOrigin => "CORS origin",
            Setting::JwtKey => "JWT key",
            Setting::Tls => "TLS certificate",
            Setting::Cluster => "cluster backend",
        }
    }
}

/// A setting that cannot be used, and why (the reason is for people: it
/// names the file, value or parse error at fault).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    setting: Setting,
    reason: String,
}

impl ConfigError {
    /// An error about `setting`.
    pub fn new(setting: Setting, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            setting,
            reason: reason.into(),
        }
    }

    /// The setting at fault.
    pub fn setting(&self) -> Setting {
        self.setting
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.setting.name(), self.reason)
    }
}

impl std::error::Error for ConfigError {}
