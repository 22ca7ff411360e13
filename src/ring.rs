//! The single-writer seqlock ring of pre-encoded SSE frames.
//!
//! # Design
//!
//! A ring of `capacity` slots (a power of two) indexes frames whose bytes live
//! in a separate byte arena, so the ring is bounded both in events and in
//! bytes. Sequence numbers start at 0 and grow forever; sequence `s` lives in
//! slot `s & (capacity - 1)`. The *retained* window is `[tail, head)`:
//!
//! - `head` is the next sequence the writer will write. Everything below it is
//!   published.
//! - `tail` is the oldest retained sequence. The writer raises it *before* it
//!   overwrites anything that belongs to a lower sequence, either because the
//!   slot is reused (`s + capacity`) or because the arena bytes are reused (the
//!   byte budget is exceeded).
//!
//! Exactly one [`RingWriter`] exists per ring. Readers hold a cursor (the next
//! sequence they want) and read without taking any lock or writing anything
//! shared.
//!
//! # Soundness
//!
//! Every shared word, the arena included, is an atomic: the arena is
//! `[AtomicU64]` and frames are copied in and out word by word with `Relaxed`
//! loads and stores (the "atomic memcpy" of RFC 3301 / the `atomic-memcpy`
//! crate). So a reader racing with the writer reads stale or mixed words —
//! never undefined behaviour — and then *validates*: after an `Acquire` fence
//! it re-reads `tail`. If `tail` is still at or below the sequence it read, no
//! byte of that frame was overwritten, so the copy is exactly what the writer
//! published; otherwise it reports [`Lapped`] and discards the copy. Frames
//! are never shared by pointer, so nothing can be freed under a reader.
//!
//! # Orderings
//!
//! Writer, for sequence `s` (Boehm's seqlock with fences, "Can Seqlocks Get
//! Along With Programming Language Memory Models?", 2012):
//!
//! 1. `tail.store(new_tail, Relaxed)` (only if it moves), then
//!    `fence(Release)`;
//! 2. arena words and slot metadata, `Relaxed`;
//! 3. `head.store(s + 1, Release)`.
//!
//! Reader, for sequences in `[from, h)`:
//!
//! 1. `h = head.load(Acquire)`: synchronizes with step 3, so every frame below
//!    `h` is fully written (as of that publish) and visible;
//! 2. `tail.load(Acquire)`; bail out with `Lapped` if `from < tail`;
//! 3. metadata and arena words, `Relaxed`;
//! 4. `fence(Acquire)`, then `tail.load(Relaxed)`. If any word read in 3 came
//!    from a later overwrite, that overwrite's step 1 release fence pairs with
//!    this acquire fence, so the raised `tail` is visible here and the read is
//!    rejected. A `tail` still `<= from` proves every word was the original.
//!
//! # Early wrap
//!
//! Frames are packed in the arena at increasing positions; position `p`
//! lives at arena byte `p % arena_size`. With the default 64 MiB budget and
//! a few thousand small events retained, writing straight through the arena
//! would stream every publish into cold memory. So when the write position
//! is at least twice the retained bytes (and 64 KiB) into the current lap,
//! and jumping to the next lap evicts nothing that would otherwise stay, the
//! writer jumps: the hot region stays about twice the retained bytes. A jump
//! only ever skips positions; readers see it as two frames that are not
//! adjacent, and copy them as two runs.
//!
//! The writer never reads anything readers write, so readers cannot slow it
//! down. `head`, `tail` and the byte counters sit on their own cache lines.

use crossbeam_utils::CachePadded;

use crate::id_index::IdIndex;
use crate::loom::{fence, AtomicBool, AtomicU64, Ordering};
use crate::tag::TypeTag;

/// Size of one arena word in bytes.
const WORD: usize = 8;

/// A reader fell behind: the events it wanted were overwritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lapped {
    /// How many events it missed (from its cursor to the oldest retained one).
    pub missed: u64,
}

/// Why [`Ring::read`] or [`Ring::meta`] returned no frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// The sequence is no longer retained.
    Lapped(Lapped),
    /// The sequence is not published yet (`seq >= head`).
    NotPublished {
        /// The head the read saw.
        head: u64,
    },
}

impl From<Lapped> for ReadError {
    fn from(lapped: Lapped) -> ReadError {
        ReadError::Lapped(lapped)
    }
}

/// Per-slot index of one frame. Written by the writer only; read racily by
/// readers and validated through `tail`.
struct Slot {
    /// Byte position of the frame in the arena's infinite address space.
    /// Frames are packed, `position(s + 1) == position(s) + len(s)`, except
    /// where the writer wrapped early to the next lap.
    position: AtomicU64,
    /// Frame length in bytes.
    len: AtomicU64,
    /// Type tag.
    tag: AtomicU64,
    /// Publish time, Unix nanoseconds; non-decreasing along the ring.
    timestamp: AtomicU64,
    /// Fingerprint of a caller-supplied id, 0 for an auto id.
    id_hash: AtomicU64,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            position: AtomicU64::new(0),
            len: AtomicU64::new(0),
            tag: AtomicU64::new(0),
            timestamp: AtomicU64::new(0),
            id_hash: AtomicU64::new(0),
        }
    }
}

/// The shared part of the ring: readers use it through `&Ring`.
pub struct Ring {
    slots: Box<[Slot]>,
    slot_mask: u64,
    arena: Box<[AtomicU64]>,
    arena_word_mask: u64,
    /// Logical byte budget: the words spanned by retained frames never
    /// exceed it (it is at most the arena's size).
    max_bytes: u64,
    head: CachePadded<AtomicU64>,
    tail: CachePadded<AtomicU64>,
    /// Timestamp of the newest evicted frame (0 when nothing was evicted).
    /// Written before `tail` is raised past it.
    evicted_timestamp: AtomicU64,
    /// Encoded bytes retained (sum of frame lengths in `[tail, head)`).
    held_bytes: CachePadded<AtomicU64>,
    writer_claimed: AtomicBool,
    /// Caller id fingerprint → sequence hints (see `id_index`).
    ids: IdIndex,
    /// The sequence the ring started at (0, or a follower's first sequence;
    /// see [`Ring::starting_at`]).
    first_seq: u64,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &self.capacity())
            .field("max_bytes", &self.max_bytes)
            .field("head", &self.head())
            .field("tail", &self.tail())
            .finish()
    }
}

/// What a frame's index says about it (for readers that filter or search).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameMeta {
    /// Sequence number.
    pub seq: u64,
    /// Type tag.
    pub tag: TypeTag,
    /// Publish time, Unix nanoseconds.
    pub timestamp: u64,
    /// Fingerprint of the caller-supplied id (0 for auto ids).
    pub id_hash: u64,
}

/// The result of [`Ring::read_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRead {
    /// The cursor after this batch: one past the last sequence examined.
    pub next: u64,
    /// Frames appended to the output buffer.
    pub frames: usize,
}

impl Ring {
    /// A ring of `capacity` slots (rounded up to a power of two, at least 2)
    /// whose retained frames span at most `max_bytes` (rounded up to whole
    /// words) of arena.
    ///
    /// # Panics
    ///
    /// If `max_bytes` is 0 or larger than the address space allows.
    pub fn new(capacity: usize, max_bytes: usize) -> Ring {
        Ring::starting_at(capacity, max_bytes, 0)
    }

    /// Like [`Ring::new`], but the first frame written gets sequence
    /// `first_seq` instead of 0: a cluster node that joins a generation
    /// midway numbers its frames as the cluster does. Nothing before
    /// `first_seq` counts as evicted.
    ///
    /// # Panics
    ///
    /// As [`Ring::new`].
    pub fn starting_at(capacity: usize, max_bytes: usize, first_seq: u64) -> Ring {
        assert!(max_bytes > 0, "ring byte budget must be positive");
        let capacity = capacity.max(2).next_power_of_two();
        let budget = max_bytes.div_ceil(WORD) * WORD;
        let arena_words = (budget / WORD).next_power_of_two();
        Ring {
            slots: (0..capacity).map(|_| Slot::new()).collect(),
            slot_mask: capacity as u64 - 1,
            arena: zeroed_words(arena_words),
            arena_word_mask: arena_words as u64 - 1,
            max_bytes: budget as u64,
            head: CachePadded::new(AtomicU64::new(first_seq)),
            tail: CachePadded::new(AtomicU64::new(first_seq)),
            evicted_timestamp: AtomicU64::new(0),
            held_bytes: CachePadded::new(AtomicU64::new(0)),
            writer_claimed: AtomicBool::new(false),
            ids: IdIndex::new(capacity),
            first_seq,
        }
    }

    /// Claims the ring's one writer. Returns `None` if it was already claimed.
    pub fn claim_writer(ring: &crate::loom::Arc<Ring>) -> Option<RingWriter> {
        // AcqRel: a second claimer must not proceed; no data is published here.
        if ring.writer_claimed.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(RingWriter {
            ring: ring.clone(),
            head: ring.head.load(Ordering::Relaxed),
            tail: ring.tail.load(Ordering::Relaxed),
            end: 0,
            held: 0,
            last_timestamp: 0,
            scratch: Vec::new(),
            last_word: 0,
        })
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The byte budget (rounded up to whole words).
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The next sequence to be written: everything below it is published.
    pub fn head(&self) -> u64 {
        // Acquire: pairs with the writer's Release store, so frames below the
        // returned head are visible to this thread.
        self.head.load(Ordering::Acquire)
    }

    /// The oldest retained sequence.
    pub fn tail(&self) -> u64 {
        self.tail.load(Ordering::Acquire)
    }

    /// Encoded bytes currently retained.
    pub fn held_bytes(&self) -> u64 {
        self.held_bytes.load(Ordering::Relaxed)
    }

    /// Timestamp of the newest evicted frame, or `None` if nothing was evicted.
    pub fn evicted_timestamp(&self) -> Option<u64> {
        if self.tail() == self.first_seq {
            None
        } else {
            Some(self.evicted_timestamp.load(Ordering::Acquire))
        }
    }

    /// Checks that nothing at or after `seq` was overwritten since this
    /// thread's preceding `Relaxed` reads.
    fn validate(&self, seq: u64) -> Result<(), Lapped> {
        // Acquire fence: pairs with the writer's Release fence before any
        // overwrite (see "Orderings"), making a raised tail visible below.
        fence(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Relaxed);
        if seq < tail {
            Err(Lapped { missed: tail - seq })
        } else {
            Ok(())
        }
    }

    /// `seq` is below the head: fully written and visible (the `Acquire`
    /// load of `head` pairs with the writer's `Release` store).
    fn check_published(&self, seq: u64) -> Result<(), ReadError> {
        let head = self.head();
        if seq < head {
            Ok(())
        } else {
            Err(ReadError::NotPublished { head })
        }
    }

    fn check_retained(&self, seq: u64) -> Result<(), Lapped> {
        let tail = self.tail();
        if seq < tail {
            Err(Lapped { missed: tail - seq })
        } else {
            Ok(())
        }
    }

    fn slot(&self, seq: u64) -> &Slot {
        let index = (seq & self.slot_mask) as usize;
        debug_assert!(index < self.slots.len());
        &self.slots[index]
    }

    /// Reads the index entry of a published, retained `seq`, validated.
    ///
    /// # Errors
    ///
    /// [`ReadError::NotPublished`] if `seq` is at or past the head,
    /// [`ReadError::Lapped`] if it is no longer retained.
    pub fn meta(&self, seq: u64) -> Result<FrameMeta, ReadError> {
        self.check_published(seq)?;
        self.check_retained(seq)?;
        let meta = self.meta_unvalidated(seq);
        self.validate(seq)?;
        Ok(meta)
    }

    fn meta_unvalidated(&self, seq: u64) -> FrameMeta {
        let slot = self.slot(seq);
        FrameMeta {
            seq,
            tag: TypeTag(slot.tag.load(Ordering::Relaxed)),
            timestamp: slot.timestamp.load(Ordering::Relaxed),
            id_hash: slot.id_hash.load(Ordering::Relaxed),
        }
    }

    /// Appends the frame bytes of `seq` to `out` without validating.
    fn copy_frame(&self, seq: u64, out: &mut Vec<u8>) {
        let slot = self.slot(seq);
        let position = slot.position.load(Ordering::Relaxed);
        let len = slot.len.load(Ordering::Relaxed);
        self.copy_bytes(position, len, out);
    }

    /// Appends the arena bytes `[start, start + len)` to `out` without
    /// validating: whole words are loaded and stored into `out`'s spare
    /// capacity, then the leading partial word is shifted away.
    fn copy_bytes(&self, start: u64, len: u64, out: &mut Vec<u8>) {
        // A torn read can see any length; clamp it so the copy stays bounded.
        // Validation rejects such a copy afterwards.
        let len = len.min(self.max_bytes) as usize;
        if len == 0 {
            return;
        }
        let skip = (start % WORD as u64) as usize;
        let words = (skip + len).div_ceil(WORD);
        let base = out.len();
        out.reserve(words * WORD);
        let first_word = start / WORD as u64;
        let spare = &mut out.spare_capacity_mut()[..words * WORD];
        for (i, dst) in spare.chunks_exact_mut(WORD).enumerate() {
            let index = ((first_word + i as u64) & self.arena_word_mask) as usize;
            debug_assert!(index < self.arena.len());
            let bytes = self.arena[index].load(Ordering::Relaxed).to_ne_bytes();
            for (dst, byte) in dst.iter_mut().zip(bytes) {
                dst.write(byte);
            }
        }
        // SAFETY: the loop above initialized the first `words * WORD` bytes
        // of the spare capacity, which `reserve` made at least that long.
        unsafe { out.set_len(base + words * WORD) };
        if skip > 0 {
            out.copy_within(base + skip..base + skip + len, base);
        }
        out.truncate(base + len);
    }

    /// Copies the frame of `seq` into `out` (appending) and returns its index
    /// entry, validated.
    ///
    /// # Errors
    ///
    /// [`ReadError::NotPublished`] if `seq` is at or past the head (nothing
    /// is copied); [`ReadError::Lapped`] if it is no longer retained, and
    /// then `out` holds garbage after its original length and should be
    /// truncated.
    pub fn read(&self, seq: u64, out: &mut Vec<u8>) -> Result<FrameMeta, ReadError> {
        self.check_published(seq)?;
        self.check_retained(seq)?;
        let meta = self.meta_unvalidated(seq);
        self.copy_frame(seq, out);
        self.validate(seq)?;
        Ok(meta)
    }

    /// Copies the frames in `[from, head)` whose tag is in `tags` (all when
    /// `tags` is empty), up to `max_frames` frames and about `max_bytes`
    /// bytes, into `out`. Consecutive frames are adjacent in the arena
    /// (except across an early wrap), so each run of accepted, adjacent
    /// frames is one bulk copy; one validation covers
    /// the whole batch (tags read before it may be torn, and then the batch
    /// is discarded with them).
    ///
    /// # Errors
    ///
    /// [`Lapped`] if `from` is no longer retained or was overwritten during the
    /// copy; `out` must then be truncated by the caller.
    pub fn read_batch(
        &self,
        from: u64,
        max_frames: usize,
        max_bytes: usize,
        tags: &[TypeTag],
        out: &mut Vec<u8>,
    ) -> Result<BatchRead, Lapped> {
        let head = self.head();
        if from >= head {
            return Ok(BatchRead {
                next: from,
                frames: 0,
            });
        }
        self.check_retained(from)?;
        let (mut seq, mut frames, mut bytes) = (from, 0, 0u64);
        let (mut run_start, mut run_len) = (0u64, 0u64);
        while seq < head && frames < max_frames && bytes < max_bytes as u64 {
            let slot = self.slot(seq);
            let accepted =
                tags.is_empty() || tags.contains(&TypeTag(slot.tag.load(Ordering::Relaxed)));
            if accepted {
                let len = slot.len.load(Ordering::Relaxed);
                let position = slot.position.load(Ordering::Relaxed);
                if run_len > 0 && position != run_start + run_len {
                    // An early wrap between two frames: a new run.
                    self.copy_bytes(run_start, run_len, out);
                    run_len = 0;
                }
                if run_len == 0 {
                    run_start = position;
                }
                run_len += len;
                bytes += len;
                frames += 1;
            } else if run_len > 0 {
                self.copy_bytes(run_start, run_len, out);
                run_len = 0;
            }
            seq += 1;
        }
        if run_len > 0 {
            self.copy_bytes(run_start, run_len, out);
        }
        self.validate(from)?;
        Ok(BatchRead { next: seq, frames })
    }

    /// The first retained sequence whose timestamp is `>= at`, or `head` when
    /// there is none, by binary search over the (non-decreasing) timestamps.
    ///
    /// # Errors
    ///
    /// [`Lapped`] if the search raced with overwrites too often to finish.
    ///
    /// The result may have been evicted by the time it is returned (when
    /// every retained timestamp was `>= at`); the caller checks it against
    /// the tail and the evicted timestamp.
    pub fn seek_timestamp(&self, at: u64) -> Result<u64, Lapped> {
        for _ in 0..SEEK_ATTEMPTS {
            // Tail first: the head loaded after it is at least as high, so
            // `[tail, head)` is never inverted however fast the writer runs.
            let tail = self.tail();
            #[cfg(test)]
            seek_hook::run(seek_hook::Point::Window);
            let head = self.head();
            let (mut low, mut high) = (tail, head);
            // The lowest sequence whose slot the search read: the copy is
            // good as long as nothing at or above it was overwritten, which
            // with a full ring lets `tail` move by up to half the window.
            let mut lowest_read = head;
            while low < high {
                let mid = low + (high - low) / 2;
                lowest_read = lowest_read.min(mid);
                let timestamp = self.slot(mid).timestamp.load(Ordering::Relaxed);
                #[cfg(test)]
                seek_hook::run(seek_hook::Point::Probe);
                if timestamp < at {
                    low = mid + 1;
                } else {
                    high = mid;
                }
            }
            if self.validate(lowest_read).is_ok() {
                return Ok(low);
            }
        }
        let tail = self.tail();
        Err(Lapped { missed: tail })
    }

    /// Arena position of `seq`'s frame, unvalidated (for the loom models, to
    /// prove they reach an early wrap).
    #[cfg(loom)]
    pub fn position_of(&self, seq: u64) -> u64 {
        self.slot(seq).position.load(Ordering::Relaxed)
    }

    /// Sequences in `[tail, head)` whose id fingerprint is `id_hash`: first
    /// the id index's candidates (O(1)), then all of them newest first (a
    /// scan, for when the index lost the id). Values may be stale; confirm
    /// each with [`Ring::read`].
    pub fn find_id_hash(&self, id_hash: u64) -> impl Iterator<Item = u64> + '_ {
        // Tail first, so `tail <= head` (see `seek_timestamp`).
        let tail = self.tail();
        let head = self.head();
        self.ids.candidates(id_hash, tail, head).chain(
            (tail..head)
                .rev()
                .filter(move |&seq| self.slot(seq).id_hash.load(Ordering::Relaxed) == id_hash),
        )
    }
}

/// The ring's one writer. Owns the write position; `!Clone`.
#[derive(Debug)]
pub struct RingWriter {
    ring: crate::loom::Arc<Ring>,
    /// Next sequence to write (mirror of `ring.head`).
    head: u64,
    /// Oldest retained sequence (mirror of `ring.tail`).
    tail: u64,
    /// Arena byte position one past the newest frame.
    end: u64,
    /// Encoded bytes retained (mirror of `ring.held_bytes`).
    held: u64,
    last_timestamp: u64,
    /// The frame being appended, in whole words.
    scratch: Vec<u64>,
    /// The last word written (its bytes before `end` belong to the newest
    /// frame and are re-stored by the next append).
    last_word: u64,
}

/// A frame too large for the ring's byte budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameTooLarge {
    /// Frame size in bytes.
    pub size: usize,
    /// The ring's byte budget.
    pub budget: u64,
}

impl RingWriter {
    /// The shared ring.
    pub fn ring(&self) -> &crate::loom::Arc<Ring> {
        &self.ring
    }

    /// The sequence the next append will get.
    pub fn next_seq(&self) -> u64 {
        self.head
    }

    /// Appends one frame, `header` followed by `body`, returning its
    /// sequence number. Timestamps are clamped to be non-decreasing.
    ///
    /// # Errors
    ///
    /// [`FrameTooLarge`] if the frame exceeds the ring's byte budget; nothing
    /// is written then.
    pub fn append(
        &mut self,
        header: &[u8],
        body: &[u8],
        tag: TypeTag,
        timestamp: u64,
        id_hash: u64,
    ) -> Result<u64, FrameTooLarge> {
        let len = header.len() + body.len();
        if (len + WORD) as u64 > self.ring.max_bytes {
            return Err(FrameTooLarge {
                size: len,
                budget: self.ring.max_bytes,
            });
        }
        let ring = &*self.ring;
        let seq = self.head;
        let timestamp = timestamp.max(self.last_timestamp);
        self.last_timestamp = timestamp;

        // 1. Evict what this frame's slot will overwrite.
        let mut tail = self
            .tail
            .max((seq + 1).saturating_sub(ring.capacity() as u64));
        for evicted in self.tail..tail {
            self.held -= ring.slot(evicted).len.load(Ordering::Relaxed);
        }
        // 2. Wrap early when the retained frames are far behind: keeps the
        // arena's working set near twice the retained bytes instead of the
        // whole byte budget (see "Early wrap").
        if let Some(wrapped) = early_wrap(ring, self.end, tail, seq, len) {
            self.end = wrapped;
            self.last_word = 0;
        }
        // 3. Evict what this frame's words will overwrite: every retained
        // word must stay out of the words this frame writes, which alias the
        // words `max_bytes` (<= arena size) below them.
        let end_word = (self.end + len as u64).div_ceil(WORD as u64) * WORD as u64;
        while tail < seq
            && end_word - word_floor(ring.slot(tail).position.load(Ordering::Relaxed))
                > ring.max_bytes
        {
            self.held -= ring.slot(tail).len.load(Ordering::Relaxed);
            tail += 1;
        }
        if tail != self.tail {
            let newest_evicted = ring.slot(tail - 1).timestamp.load(Ordering::Relaxed);
            // Release: a reader that acquires the raised tail also sees the
            // evicted timestamp that goes with it.
            ring.evicted_timestamp
                .store(newest_evicted, Ordering::Relaxed);
            ring.tail.store(tail, Ordering::Release);
            self.tail = tail;
            // Release fence: orders the raised tail before every overwrite
            // below (pairs with the readers' Acquire fence in `validate`).
            fence(Ordering::Release);
        }

        // 4. Bytes and index, Relaxed: published by the head store below.
        // The frame starts mid-word after the previous one (unless it just
        // wrapped early): its first word re-stores the previous frame's last
        // bytes unchanged.
        let skip = (self.end % WORD as u64) as usize;
        let words = (skip + len).div_ceil(WORD);
        // Assemble the words in the writer's scratch buffer (the previous
        // frame's bytes that share the first word, header, body, zero
        // padding), then store them (two runs if they wrap the arena's end).
        if self.scratch.len() < words {
            self.scratch.resize(words, 0);
        }
        let scratch = &mut self.scratch[..words];
        if let Some(last) = scratch.last_mut() {
            *last = 0; // padding bytes
        }
        let bytes = words_as_bytes_mut(scratch);
        bytes[..skip].copy_from_slice(&self.last_word.to_ne_bytes()[..skip]);
        bytes[skip..skip + header.len()].copy_from_slice(header);
        bytes[skip + header.len()..skip + len].copy_from_slice(body);
        // An empty frame at a word boundary spans no word at all.
        if let Some(&last) = scratch.last() {
            self.last_word = last;
        }
        let start = ((self.end / WORD as u64) & ring.arena_word_mask) as usize;
        let first_run = words.min(ring.arena.len() - start);
        let (run, wrapped) = scratch.split_at(first_run);
        for (cell, &word) in ring.arena[start..start + first_run].iter().zip(run) {
            cell.store(word, Ordering::Relaxed);
        }
        for (cell, &word) in ring.arena.iter().zip(wrapped) {
            cell.store(word, Ordering::Relaxed);
        }
        let slot = ring.slot(seq);
        slot.position.store(self.end, Ordering::Relaxed);
        slot.len.store(len as u64, Ordering::Relaxed);
        slot.tag.store(tag.0, Ordering::Relaxed);
        slot.timestamp.store(timestamp, Ordering::Relaxed);
        slot.id_hash.store(id_hash, Ordering::Relaxed);
        if id_hash != 0 {
            ring.ids.insert(id_hash, seq, self.tail);
        }
        self.end += len as u64;
        self.held += len as u64;
        ring.held_bytes.store(self.held, Ordering::Relaxed);

        // 5. Publish. Release: pairs with readers' Acquire load of head.
        self.head = seq + 1;
        ring.head.store(self.head, Ordering::Release);
        Ok(seq)
    }
}

/// Searches `seek_timestamp` tries before giving up; two under loom, so a
/// model's few appends can make every attempt race.
#[cfg(not(loom))]
const SEEK_ATTEMPTS: usize = 64;
#[cfg(loom)]
const SEEK_ATTEMPTS: usize = 2;

/// Unit tests run the writer at chosen points of a seek, on the seeking
/// thread, to pin its races down deterministically.
#[cfg(test)]
mod seek_hook {
    use std::cell::RefCell;

    /// Where in `seek_timestamp` the hook runs.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum Point {
        /// Between the loads of the window's two ends.
        Window,
        /// After each timestamp the search reads.
        Probe,
    }

    type Hook = Box<dyn FnMut(Point)>;

    thread_local! {
        static HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
    }

    pub(super) fn set(hook: Option<Hook>) {
        HOOK.with(|slot| *slot.borrow_mut() = hook);
    }

    pub(super) fn run(point: Point) {
        HOOK.with(|slot| {
            if let Some(hook) = slot.borrow_mut().as_mut() {
                hook(point);
            }
        });
    }
}

/// The smallest arena lap before an early wrap (see "Early wrap").
#[cfg(not(loom))]
const EARLY_WRAP_MIN: u64 = 64 << 10;
/// Small under loom so the models' tiny arenas wrap early too.
#[cfg(loom)]
const EARLY_WRAP_MIN: u64 = 0;

/// The start of the next arena lap, when the write position `end` should
/// jump there: the current lap has run well past the retained frames
/// (`[tail, seq)`), and no retained word would be overwritten sooner for it.
fn early_wrap(ring: &Ring, end: u64, tail: u64, seq: u64, len: usize) -> Option<u64> {
    let arena_bytes = ring.arena.len() as u64 * WORD as u64;
    let offset = end % arena_bytes;
    let oldest = if tail < seq {
        word_floor(ring.slot(tail).position.load(Ordering::Relaxed))
    } else {
        end
    };
    let window = end - oldest;
    let frame = len as u64 + WORD as u64;
    if offset == 0 || offset < (2 * (window + frame)).max(EARLY_WRAP_MIN) {
        return None;
    }
    let wrapped = end + (arena_bytes - offset);
    // Only if the frame then evicts nothing it would not evict anyway.
    (wrapped + frame - oldest <= ring.max_bytes).then_some(wrapped)
}

/// `position` rounded down to a whole word.
fn word_floor(position: u64) -> u64 {
    position / WORD as u64 * WORD as u64
}

/// Views words as their bytes (native order), to assemble a frame in place.
fn words_as_bytes_mut(words: &mut [u64]) -> &mut [u8] {
    let len = std::mem::size_of_val(words);
    // SAFETY: the pointer and length cover exactly the words' memory, which
    // is initialized; `u8` has alignment 1 and every byte pattern is a valid
    // `u64`, so writes through the byte view cannot make a word invalid; the
    // returned slice borrows `words` mutably, so nothing aliases it.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) }
}

/// `words` zeroed atomic words. Outside loom this is one zeroed allocation
/// with the atomics' own layout, which the OS maps lazily, so a 64 MiB
/// budget costs nothing until used.
#[cfg(not(loom))]
pub(crate) fn zeroed_words(words: usize) -> Box<[AtomicU64]> {
    use std::alloc::{alloc_zeroed, handle_alloc_error, Layout};

    if words == 0 {
        return Box::new([]);
    }
    // The layout of `[AtomicU64; words]` (alignment 8 even where `u64` has
    // 4, as on i686): the same layout `Box<[AtomicU64]>` frees with.
    let layout = Layout::array::<AtomicU64>(words).expect("arena size overflows the address space");
    // SAFETY: `layout` has a non-zero size (`words > 0`, `AtomicU64` is 8
    // bytes).
    let ptr = unsafe { alloc_zeroed(layout) }.cast::<AtomicU64>();
    if ptr.is_null() {
        handle_alloc_error(layout);
    }
    // SAFETY: `ptr` is a live allocation from the global allocator with the
    // layout of `[AtomicU64; words]`, so the box frees it with that same
    // layout; all its bytes are zero, and an all-zero `AtomicU64` is a valid
    // value (0); nothing else owns it.
    unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, words)) }
}

#[cfg(loom)]
pub(crate) fn zeroed_words(words: usize) -> Box<[AtomicU64]> {
    (0..words).map(|_| AtomicU64::new(0)).collect()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn frame(n: u64, len: usize) -> Vec<u8> {
        let mut bytes = format!("id: {n}\ndata: ").into_bytes();
        while bytes.len() < len - 2 {
            bytes.push(b'a' + (n % 26) as u8);
        }
        bytes.extend_from_slice(b"\n\n");
        bytes
    }

    fn append(writer: &mut RingWriter, n: u64, len: usize) -> u64 {
        writer
            .append(b"", &frame(n, len), TypeTag::of("t"), n, 0)
            .unwrap()
    }

    #[test]
    fn reads_back_what_was_written() {
        let ring = Arc::new(Ring::new(8, 1024));
        let mut writer = Ring::claim_writer(&ring).unwrap();
        assert!(Ring::claim_writer(&ring).is_none(), "only one writer");
        for n in 0..5 {
            assert_eq!(append(&mut writer, n, 21 + n as usize), n);
        }
        for n in 0..5 {
            let mut out = Vec::new();
            let meta = ring.read(n, &mut out).unwrap();
            assert_eq!(out, frame(n, 21 + n as usize));
            assert_eq!(meta.timestamp, n);
        }
        assert_eq!(ring.held_bytes(), (0..5).map(|n| 21 + n).sum::<u64>());
    }

    #[test]
    fn slot_reuse_raises_tail() {
        let ring = Arc::new(Ring::new(4, 1 << 16));
        let mut writer = Ring::claim_writer(&ring).unwrap();
        for n in 0..6 {
            append(&mut writer, n, 16);
        }
        assert_eq!((ring.tail(), ring.head()), (2, 6));
        let mut out = Vec::new();
        assert_eq!(
            ring.read(1, &mut out),
            Err(ReadError::Lapped(Lapped { missed: 1 }))
        );
        assert_eq!(
            ring.read(0, &mut out),
            Err(ReadError::Lapped(Lapped { missed: 2 }))
        );
        out.clear();
        ring.read(2, &mut out).unwrap();
        assert_eq!(out, frame(2, 16));
        assert_eq!(ring.evicted_timestamp(), Some(1));
    }

    #[test]
    fn byte_budget_evicts_oldest() {
        // 64-byte budget, 24-byte frames: two fit, the third evicts the first.
        let ring = Arc::new(Ring::new(16, 64));
        let mut writer = Ring::claim_writer(&ring).unwrap();
        append(&mut writer, 0, 24);
        append(&mut writer, 1, 24);
        assert_eq!(ring.tail(), 0);
        append(&mut writer, 2, 24);
        assert_eq!(ring.tail(), 1);
        assert_eq!(ring.held_bytes(), 48);
        // Frames wrap around the arena's end and still read back intact.
        for n in 3..40 {
            append(&mut writer, n, 24);
            let mut out = Vec::new();
            ring.read(n, &mut out).unwrap();
            assert_eq!(out, frame(n, 24));
            ring.read(n - 1, &mut out).unwrap();
        }
    }

    #[test]
    fn early_wrap_keeps_the_hot_region_small_and_reads_exact() {
        // 4 MiB budget, 64 slots of ~40-byte frames: without early wraps the
        // writer would stream through all 4 MiB before reusing a byte.
        let ring = Arc::new(Ring::new(64, 4 << 20));
        let mut writer = Ring::claim_writer(&ring).unwrap();
        let arena = ring.arena.len() as u64 * 8;
        let mut max_offset = 0;
        let mut wraps = 0;
        let mut last_position = 0;
        for n in 0..20_000u64 {
            append(&mut writer, n, 16 + (n % 50) as usize);
            let position = ring.slot(n).position.load(Ordering::Relaxed);
            if position % arena < last_position % arena {
                wraps += 1;
            }
            last_position = position;
            max_offset = max_offset.max(position % arena);
            if n >= 70 && n % 7 == 0 {
                // A batch across whatever wraps happened is still exact.
                let mut out = Vec::new();
                let read = ring
                    .read_batch(n - 60, 64, usize::MAX, &[], &mut out)
                    .unwrap();
                let expected: Vec<u8> = (n - 60..read.next)
                    .flat_map(|m| frame(m, 16 + (m % 50) as usize))
                    .collect();
                assert_eq!(out, expected);
            }
        }
        assert!(wraps > 10, "early wraps happened: {wraps}");
        assert!(
            max_offset < 128 << 10,
            "hot region stayed small: {max_offset}"
        );
    }

    #[test]
    fn oversize_frame_is_refused() {
        let ring = Arc::new(Ring::new(4, 64));
        let mut writer = Ring::claim_writer(&ring).unwrap();
        let big = vec![b'x'; 65];
        assert_eq!(
            writer.append(b"", &big, TypeTag::of("t"), 0, 0),
            Err(FrameTooLarge {
                size: 65,
                budget: 64
            })
        );
        assert_eq!(ring.head(), 0);
    }

    #[test]
    fn batch_read_filters_and_bounds() {
        let ring = Arc::new(Ring::new(64, 1 << 16));
        let mut writer = Ring::claim_writer(&ring).unwrap();
        for n in 0..10u64 {
            let tag = if n % 2 == 0 { "even" } else { "odd" };
            writer
                .append(b"", &frame(n, 16), TypeTag::of(tag), n, 0)
                .unwrap();
        }
        let mut out = Vec::new();
        let read = ring
            .read_batch(0, 3, usize::MAX, &[TypeTag::of("even")], &mut out)
            .unwrap();
        assert_eq!(read, BatchRead { next: 5, frames: 3 });
        let expected: Vec<u8> = [0, 2, 4].iter().flat_map(|&n| frame(n, 16)).collect();
        assert_eq!(out, expected);
        out.clear();
        let read = ring.read_batch(5, 100, 20, &[], &mut out).unwrap();
        assert_eq!(read, BatchRead { next: 7, frames: 2 });
        let read = ring.read_batch(10, 100, 20, &[], &mut out).unwrap();
        assert_eq!(
            read,
            BatchRead {
                next: 10,
                frames: 0
            }
        );
    }

    #[test]
    fn seeks_timestamps() {
        let ring = Arc::new(Ring::new(8, 1 << 16));
        let mut writer = Ring::claim_writer(&ring).unwrap();
        for (n, timestamp) in [10u64, 20, 20, 30].iter().enumerate() {
            writer
                .append(b"", &frame(n as u64, 16), TypeTag::of("t"), *timestamp, 0)
                .unwrap();
        }
        assert_eq!(ring.seek_timestamp(0), Ok(0));
        assert_eq!(ring.seek_timestamp(10), Ok(0));
        assert_eq!(ring.seek_timestamp(11), Ok(1));
        assert_eq!(ring.seek_timestamp(20), Ok(1));
        assert_eq!(ring.seek_timestamp(30), Ok(3));
        assert_eq!(ring.seek_timestamp(31), Ok(4));
        // Timestamps never go backwards, even if the clock does.
        writer
            .append(b"", &frame(4, 16), TypeTag::of("t"), 5, 0)
            .unwrap();
        assert_eq!(ring.meta(4).unwrap().timestamp, 30);
    }

    /// Issue 9, item 4: reads past the head must be refused, not served
    /// from the slot a lap ago (or torn, at the head being written).
    #[test]
    fn reads_at_or_past_the_head_are_refused() {
        let ring = Arc::new(Ring::new(4, 1 << 10));
        let mut writer = Ring::claim_writer(&ring).unwrap();
        for n in 0..5 {
            append(&mut writer, n, 16);
        }
        let mut out = Vec::new();
        assert!(ring.read(5, &mut out).is_err(), "read(head) is refused");
        assert!(ring.read(9, &mut out).is_err(), "read(head + 4) is refused");
        assert!(out.is_empty(), "nothing copied: {out:?}");
        assert!(ring.meta(5).is_err(), "meta(head) is refused");
        assert_eq!(ring.read(4, &mut out).unwrap().seq, 4);
        assert_eq!(out, frame(4, 16));
    }

    /// Issue 9, item 5: an empty frame must not panic the writer.
    #[test]
    fn an_empty_frame_is_appended_and_read_back() {
        let ring = Arc::new(Ring::new(4, 1 << 10));
        let mut writer = Ring::claim_writer(&ring).unwrap();
        assert_eq!(writer.append(b"", b"", TypeTag::of("t"), 0, 0), Ok(0));
        append(&mut writer, 1, 21);
        assert_eq!(writer.append(b"", b"", TypeTag::of("t"), 0, 0), Ok(2));
        append(&mut writer, 3, 16);
        let mut out = Vec::new();
        let read = ring.read_batch(0, 8, usize::MAX, &[], &mut out).unwrap();
        assert_eq!(read, BatchRead { next: 4, frames: 4 });
        let expected: Vec<u8> = [frame(1, 21), frame(3, 16)].concat();
        assert_eq!(out, expected);
    }

    /// Issue 9, item 6: the arena has the atomics' layout (alignment 8 even
    /// on targets where `u64` has 4), zeroed, for any size. On x86_64 both
    /// layouts agree, so this cannot fail on this host; the fix is that the
    /// allocation no longer borrows `u64`'s layout at all.
    #[test]
    fn arena_words_have_the_atomic_layout_and_start_zeroed() {
        for words in [0usize, 1, 3, 4096, 1 << 20] {
            let arena = zeroed_words(words);
            assert_eq!(arena.len(), words);
            assert_eq!(
                arena.as_ptr() as usize % std::mem::align_of::<AtomicU64>(),
                0
            );
            assert!(arena.iter().all(|word| word.load(Ordering::Relaxed) == 0));
        }
    }

    /// Issue 9, item 3: with a full ring every append raises `tail`; a seek
    /// for a timestamp still retained in the middle of the ring must find
    /// it, not give up because `tail` moved during the search. The hook
    /// appends one frame after every timestamp the search reads.
    #[test]
    fn seek_succeeds_against_a_writer_that_keeps_evicting() {
        const CAPACITY: u64 = 1 << 10;
        let ring = Arc::new(Ring::new(CAPACITY as usize, 1 << 20));
        let mut writer = Ring::claim_writer(&ring).unwrap();
        for n in 0..CAPACITY {
            writer
                .append(b"", b"x\n\n", TypeTag::of("t"), n, 0)
                .unwrap();
        }
        let mut next = CAPACITY;
        seek_hook::set(Some(Box::new(move |point| {
            if point == seek_hook::Point::Probe {
                // Timestamp == sequence.
                writer
                    .append(b"", b"x\n\n", TypeTag::of("t"), next, 0)
                    .unwrap();
                next += 1;
            }
        })));
        for _ in 0..100 {
            let at = ring.tail() + CAPACITY / 2;
            assert_eq!(ring.seek_timestamp(at), Ok(at), "retained, so found");
        }
        seek_hook::set(None);
    }

    /// Issue 9, item 2 (in the ring): a writer that moves `tail` past the
    /// `head` a seek loaded must not make the seek answer a sequence older
    /// than the timestamp, unsearched.
    #[test]
    fn seek_never_answers_older_than_asked_when_tail_passes_head() {
        let ring = Arc::new(Ring::new(2, 1 << 10));
        let mut writer = Ring::claim_writer(&ring).unwrap();
        for n in 0..2 {
            writer
                .append(b"", b"x\n\n", TypeTag::of("t"), n, 0)
                .unwrap();
        }
        let mut once = Some(());
        seek_hook::set(Some(Box::new(move |point| {
            if point == seek_hook::Point::Window && once.take().is_some() {
                for n in 2..6 {
                    writer
                        .append(b"", b"x\n\n", TypeTag::of("t"), n, 0)
                        .unwrap();
                }
            }
        })));
        // Nothing is at or after 10 yet: the answer is the head (live).
        let seq = ring.seek_timestamp(10);
        seek_hook::set(None);
        assert_eq!(seq, Ok(6), "tail {} head {}", ring.tail(), ring.head());
    }

    #[test]
    fn concurrent_readers_see_exact_frames_or_lapped() {
        // Slot reuse and byte-budget eviction.
        concurrent_readers(Ring::new(64, 4096));
    }

    #[test]
    fn concurrent_readers_see_exact_frames_across_early_wraps() {
        concurrent_readers(Ring::new(64, 1 << 20));
    }

    fn concurrent_readers(ring: Ring) {
        let ring = Arc::new(ring);
        let mut writer = Ring::claim_writer(&ring).unwrap();
        let total = 20_000u64;
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let ring = ring.clone();
                std::thread::spawn(move || {
                    let mut cursor = 0u64;
                    let mut lapped = 0u64;
                    let mut out = Vec::new();
                    while cursor < total {
                        out.clear();
                        match ring.read_batch(cursor, 16, 4096, &[], &mut out) {
                            Ok(read) => {
                                let mut expected = Vec::new();
                                for n in cursor..read.next {
                                    expected.extend(frame(n, 16 + (n % 40) as usize));
                                }
                                assert_eq!(out, expected, "torn or wrong frames");
                                cursor = read.next;
                            }
                            Err(Lapped { missed }) => {
                                lapped += 1;
                                cursor += missed;
                            }
                        }
                    }
                    lapped
                })
            })
            .collect();
        for n in 0..total {
            append(&mut writer, n, 16 + (n % 40) as usize);
        }
        for reader in readers {
            reader.join().unwrap();
        }
    }
}

/// The follower API's ring (cluster nodes): numbering that starts midway.
#[cfg(all(test, not(loom)))]
mod starting_at_tests {
    use std::sync::Arc;

    use super::Ring;

    #[test]
    fn a_ring_starting_midway_numbers_from_there_and_has_evicted_nothing() {
        let ring = Arc::new(Ring::starting_at(4, 1 << 16, 1000));
        assert_eq!((ring.head(), ring.tail()), (1000, 1000));
        assert_eq!(ring.evicted_timestamp(), None);
        let mut writer = Ring::claim_writer(&ring).unwrap();
        for i in 0..4u64 {
            let seq = writer
                .append(
                    b"id: x\n",
                    b"data: y\n\n",
                    crate::TypeTag::of("t"),
                    10 + i,
                    0,
                )
                .unwrap();
            assert_eq!(seq, 1000 + i);
        }
        assert_eq!(ring.evicted_timestamp(), None, "full, nothing evicted yet");
        writer
            .append(b"id: x\n", b"data: y\n\n", crate::TypeTag::of("t"), 20, 0)
            .unwrap();
        assert_eq!(ring.tail(), 1001);
        assert_eq!(ring.evicted_timestamp(), Some(10));
    }
}
