//! The in-flight batch: the events read but not yet written, and the
//! offsets they (and the dead-lettered records between them) will commit.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use regwatch_schemas::WireEvent;

/// The in-flight batch: everything read but not yet committed.
#[derive(Debug, Default)]
pub(super) struct Batch {
    /// The valid events, in the order read: what the sink writes.
    pub(super) events: Vec<WireEvent>,
    /// `(partition, offset)` of `events[i]`, for dead-lettering an event
    /// the sink refuses and for taking a revoked partition's events out.
    pub(super) read_at: Vec<(i32, i64)>,
    /// Sum of the events' JSON lengths, for the byte bound.
    pub(super) bytes: usize,
    /// Per partition, the offset to commit once this batch is durable: one
    /// past the last record taken from it (valid or dead-lettered). Records
    /// arrive in offset order per partition, so everything below it is in
    /// this batch or already durable.
    pub(super) next_offsets: BTreeMap<i32, i64>,
    /// When the first record of this batch arrived.
    pub(super) started: Option<Instant>,
}

impl Batch {
    pub(super) fn is_empty(&self) -> bool {
        self.events.is_empty() && self.next_offsets.is_empty()
    }

    pub(super) fn note(&mut self, partition: i32, offset: i64) {
        self.next_offsets.insert(partition, offset + 1);
        self.started.get_or_insert_with(Instant::now);
    }

    /// A valid event read at `(partition, offset)`.
    pub(super) fn push(&mut self, event: WireEvent, partition: i32, offset: i64) {
        self.bytes += event.json().len();
        self.events.push(event);
        self.read_at.push((partition, offset));
        self.note(partition, offset);
    }

    /// Put `newer` (read while this batch was out) after this batch.
    pub(super) fn append(&mut self, newer: Batch) {
        self.events.extend(newer.events);
        self.read_at.extend(newer.read_at);
        self.bytes += newer.bytes;
        self.next_offsets.extend(newer.next_offsets);
    }

    /// Remove and return what belongs to `partitions`.
    pub(super) fn take_partitions(&mut self, partitions: &BTreeSet<i32>) -> Batch {
        let mut out = Batch::default();
        let events = std::mem::take(&mut self.events);
        let read_at = std::mem::take(&mut self.read_at);
        for (event, at) in events.into_iter().zip(read_at) {
            let keep = if partitions.contains(&at.0) {
                &mut out
            } else {
                &mut *self
            };
            keep.events.push(event);
            keep.read_at.push(at);
        }
        out.bytes = out.events.iter().map(|e| e.json().len()).sum();
        self.bytes = self.bytes.saturating_sub(out.bytes);
        for p in partitions {
            if let Some(o) = self.next_offsets.remove(p) {
                out.next_offsets.insert(*p, o);
            }
        }
        if self.is_empty() {
            self.started = None;
        }
        out
    }
}
