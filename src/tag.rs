//! Type tags: a 64-bit fingerprint of an event type, so filtering costs one
//! integer compare per frame instead of string work.
//!
//! Tags are a fixed-key FNV-1a hash. A collision would only ever let a frame
//! *through* a tag compare; subscribers with a filter confirm the type string
//! of every frame that passes (`Filter::confirm_types` in `subscription`), so
//! a collision can never deliver a wrong type. Unfiltered subscribers compare
//! nothing and pay nothing.

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
        #[cfg(test)]
        if let Some(forced) = collision::forced(event_type) {
            return TypeTag(forced);
        }
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

/// Unit tests force tags to collide on their own thread.
#[cfg(test)]
pub(crate) mod collision {
    use std::cell::RefCell;

    thread_local! {
        static FORCED: RefCell<Vec<(String, u64)>> = const { RefCell::new(Vec::new()) };
    }

    /// From now on, on this thread, `event_type` gets the tag `tag`.
    pub(crate) fn force(event_type: &str, tag: u64) {
        FORCED.with(|forced| forced.borrow_mut().push((event_type.to_owned(), tag)));
    }

    pub(super) fn forced(event_type: &str) -> Option<u64> {
        FORCED.with(|forced| {
            forced
                .borrow()
                .iter()
                .find(|(t, _)| t == event_type)
                .map(|&(_, tag)| tag)
        })
    }
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
