//! Type tags: a 64-bit fingerprint of an event type, so filtering costs one
//! integer compare per frame instead of string work.
//!
//! Tags are a fixed-key FNV-1a hash. A collision would only ever let a frame
//! *through* a tag compare; subscribers with a filter confirm the type string
//! on frames that pass (see `Subscription`), so a collision can never deliver
//! a wrong type.

/// The 64-bit fingerprint of an event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeTag(pub(crate) u64);

impl TypeTag {
    /// The tag of `event_type` (empty means `message`).
    pub fn of(event_type: &str) -> TypeTag {
        let event_type = if event_type.is_empty() {
            crate::frame::DEFAULT_EVENT_TYPE
        } else {
            event_type
        };
        TypeTag(fnv1a(event_type.as_bytes()))
    }

    /// The raw fingerprint.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// FNV-1a over `bytes`; also used to fingerprint caller-supplied ids.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_type_is_message() {
        assert_eq!(TypeTag::of(""), TypeTag::of("message"));
        assert_ne!(TypeTag::of("a"), TypeTag::of("b"));
    }
}
