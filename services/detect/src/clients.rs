//! The shared client state every detector reads: the client table (every
//! tracked client's [`ClientRecord`], bounded, with CLOCK (second-chance)
//! eviction and the dormancy queue), the record itself ([`record`]) and the
//! scope interner its scope bits come from ([`scopes`]).
//!
//! It is the one table that grows with the number of clients (a million by
//! default), so its layout is chosen for bytes per client (target: at most
//! 100 MiB per million, see `BENCHMARKS.md`), not reused from
//! [`BoundedMap`](crate::bounded::BoundedMap):
//!
//! - **Slots**: one dense `Vec` of 80-byte slots, a 16-byte key plus the
//!   64-byte record, no `Option`, no per-client heap allocation. The table
//!   bookkeeping bits (live, referenced, text key, queued) live in the
//!   record's spare byte. The vector grows by doubling but never past the
//!   configured cap, so a full table holds no unused tail.
//! - **Key**: a canonical (lowercase, hyphenated) UUID is stored as its 16
//!   bytes; any other id (a CIMD document URL) is stored in one shared text
//!   buffer and the 16 bytes hold its offset and length. A `Box<str>` per
//!   client would cost a 16-byte pointer plus an allocation (and the
//!   allocator's overhead) each; the buffer costs the text, plus garbage
//!   left by evicted ids until the next compaction (kept below half).
//! - **Index**: a `hashbrown::HashTable<u32>` of slot numbers, 4 bytes plus
//!   one control byte a bucket, keyed by a keyed SipHash (std's
//!   `RandomState`) of the id, compared against the slot's key. Two ids
//!   with the same hash are two entries (no key is ever lost to a collision).
//! - **CLOCK**: the hand walks the slot array itself; no separate queue of
//!   slot numbers. A new client takes the slot just freed behind the hand,
//!   so it is the last to be considered, as in the textbook algorithm.
//! - **Dormancy queue**: slot numbers (4 bytes each) in creation order; the
//!   deadline is derived from the record's `first_seen`. An entry whose
//!   client was evicted before its check is counted in a small side map
//!   (`stale`) and skipped when it reaches the front: entries of one slot
//!   sit in the queue in creation order, so the oldest belongs to the
//!   evicted client. That map is empty unless the table is at its cap.

pub mod record;
pub mod scopes;

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;
use uuid::Uuid;

pub use record::{ClientRecord, ClientStatus};
pub use scopes::ScopeInterner;

/// The slot holds a client.
const LIVE: u8 = 1;
/// Used since the CLOCK hand last passed.
const REFERENCED: u8 = 2;
/// The key is in the text buffer, not a UUID.
const TEXT_KEY: u8 = 4;
/// The client's dormancy entry is still in the queue.
const QUEUED: u8 = 8;

/// Below this much garbage the text buffer is never compacted.
const MIN_COMPACT: usize = 64 * 1024;

#[derive(Debug, Clone)]
struct Slot {
    key: [u8; 16],
    rec: ClientRecord,
}

// The budget is per slot: keep it from growing by accident.
const _: () = assert!(std::mem::size_of::<Slot>() == 80);

/// An id as it is hashed: the same for the query string and the stored
/// form, so the index can be rebuilt from the slots alone.
#[derive(Hash)]
enum Key<'a> {
    Uuid([u8; 16]),
    Text(&'a str),
}

impl<'a> Key<'a> {
    fn of(s: &'a str) -> Self {
        if s.len() == 36 {
            if let Ok(u) = Uuid::try_parse(s) {
                let mut buf = [0u8; 36];
                if u.hyphenated().encode_lower(&mut buf) == s {
                    return Key::Uuid(*u.as_bytes());
                }
            }
        }
        Key::Text(s)
    }
}

fn text_span(key: &[u8; 16]) -> (usize, usize) {
    let mut off = [0u8; 8];
    let mut len = [0u8; 8];
    off.copy_from_slice(&key[..8]);
    len.copy_from_slice(&key[8..]);
    (
        u64::from_le_bytes(off) as usize,
        u64::from_le_bytes(len) as usize,
    )
}

fn text_key(off: usize, len: usize) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&(off as u64).to_le_bytes());
    key[8..].copy_from_slice(&(len as u64).to_le_bytes());
    key
}

fn stored_key<'a>(slot: &Slot, text: &'a str) -> Key<'a> {
    if slot.rec.meta & TEXT_KEY != 0 {
        let (off, len) = text_span(&slot.key);
        Key::Text(text.get(off..off + len).unwrap_or(""))
    } else {
        Key::Uuid(slot.key)
    }
}

fn same_key(slot: &Slot, text: &str, k: &Key<'_>) -> bool {
    match (stored_key(slot, text), k) {
        (Key::Uuid(a), Key::Uuid(b)) => a == *b,
        (Key::Text(a), Key::Text(b)) => a == *b,
        _ => false,
    }
}

/// See the module docs.
#[derive(Debug)]
pub struct ClientTable {
    hasher: RandomState,
    index: HashTable<u32>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    hand: usize,
    live: usize,
    capacity: usize,
    evictions: u64,
    text: String,
    text_garbage: usize,
    dormant: VecDeque<u32>,
    stale: HashMap<u32, u32>,
}

impl ClientTable {
    /// An empty table holding at most `capacity` clients.
    pub fn new(capacity: usize) -> Self {
        ClientTable {
            hasher: RandomState::new(),
            index: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            hand: 0,
            live: 0,
            capacity: capacity.max(1),
            evictions: 0,
            text: String::new(),
            text_garbage: 0,
            dormant: VecDeque::new(),
            stale: HashMap::new(),
        }
    }

    /// Clients held.
    pub fn len(&self) -> usize {
        self.live
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Clients dropped so far to stay within capacity.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Dormancy entries waiting (stale ones included).
    pub fn dormant_pending(&self) -> usize {
        self.dormant.len()
    }

    fn hash(&self, k: &Key<'_>) -> u64 {
        self.hasher.hash_one(k)
    }

    fn find(&self, id: &str) -> Option<u32> {
        let k = Key::of(id);
        let (slots, text) = (&self.slots, self.text.as_str());
        self.index
            .find(self.hash(&k), |&s| same_key(&slots[s as usize], text, &k))
            .copied()
    }

    /// The record of `id`, without marking it used.
    pub fn peek(&self, id: &str) -> Option<&ClientRecord> {
        let s = self.find(id)?;
        Some(&self.slots[s as usize].rec)
    }

    /// The record of `id`, marked as used.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut ClientRecord> {
        let s = self.find(id)?;
        let rec = &mut self.slots[s as usize].rec;
        rec.meta |= REFERENCED;
        Some(rec)
    }

    /// The record in a slot.
    pub fn at_slot(&self, slot: u32) -> Option<&ClientRecord> {
        self.slots
            .get(slot as usize)
            .filter(|s| s.rec.meta & LIVE != 0)
            .map(|s| &s.rec)
    }

    /// The record in a slot, mutable (not marked used).
    pub fn at_slot_mut(&mut self, slot: u32) -> Option<&mut ClientRecord> {
        self.slots
            .get_mut(slot as usize)
            .filter(|s| s.rec.meta & LIVE != 0)
            .map(|s| &mut s.rec)
    }

    /// The client id in a slot.
    pub fn id_at(&self, slot: u32) -> Option<String> {
        let s = self.slots.get(slot as usize)?;
        if s.rec.meta & LIVE == 0 {
            return None;
        }
        Some(match stored_key(s, &self.text) {
            Key::Uuid(b) => Uuid::from_bytes(b).hyphenated().to_string(),
            Key::Text(t) => t.to_owned(),
        })
    }

    /// The record of `id`, created by `make` when absent (evicting by CLOCK
    /// when full). Returns the slot and whether it was created.
    pub fn get_or_insert_with(
        &mut self,
        id: &str,
        make: impl FnOnce() -> ClientRecord,
    ) -> (u32, bool) {
        if let Some(s) = self.find(id) {
            self.slots[s as usize].rec.meta |= REFERENCED;
            return (s, false);
        }
        if self.live >= self.capacity {
            self.evict_one();
        }
        let k = Key::of(id);
        let h = self.hash(&k);
        let (key, text_flag) = match k {
            Key::Uuid(b) => (b, 0),
            Key::Text(t) => {
                let off = self.text.len();
                self.text.push_str(t);
                (text_key(off, t.len()), TEXT_KEY)
            }
        };
        let mut rec = make();
        rec.meta = LIVE | text_flag;
        let slot = Slot { key, rec };
        let s = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = slot;
                s
            }
            None => {
                if self.slots.len() == self.slots.capacity() {
                    // Doubling, but never past the cap: a full table has no
                    // unused tail (the slot count never exceeds the cap).
                    let want = (self.slots.capacity() * 2)
                        .max(16)
                        .min(self.capacity)
                        .max(self.slots.len() + 1);
                    self.slots.reserve_exact(want - self.slots.len());
                }
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        let (slots, text, hasher) = (&self.slots, self.text.as_str(), &self.hasher);
        self.index.insert_unique(h, s, |&x| {
            hasher.hash_one(stored_key(&slots[x as usize], text))
        });
        self.live += 1;
        (s, true)
    }

    fn evict_one(&mut self) {
        let n = self.slots.len();
        // Each pass clears every reference bit at most once, so two rounds
        // always find a victim.
        for _ in 0..2 * n + 1 {
            let i = self.hand % n.max(1);
            self.hand = i + 1;
            let Some(s) = self.slots.get_mut(i) else {
                return;
            };
            if s.rec.meta & LIVE == 0 {
                continue;
            }
            if s.rec.meta & REFERENCED != 0 {
                s.rec.meta &= !REFERENCED;
                continue;
            }
            self.release(i as u32);
            self.evictions += 1;
            return;
        }
    }

    /// Drops the client in `slot` from the index and frees the slot.
    fn release(&mut self, slot: u32) {
        let Some(s) = self.slots.get(slot as usize) else {
            return;
        };
        let meta = s.rec.meta;
        if meta & LIVE == 0 {
            return;
        }
        let h = self.hasher.hash_one(stored_key(s, &self.text));
        if let Ok(e) = self.index.find_entry(h, |&x| x == slot) {
            e.remove();
        }
        if meta & QUEUED != 0 {
            *self.stale.entry(slot).or_default() += 1;
        }
        if meta & TEXT_KEY != 0 {
            self.text_garbage += text_span(&s.key).1;
        }
        self.slots[slot as usize].rec.meta = 0;
        self.free.push(slot);
        self.live -= 1;
        if self.text_garbage > MIN_COMPACT && self.text_garbage * 2 > self.text.len() {
            self.compact_text();
        }
    }

    /// Rewrites the text buffer with the live ids only. Hashes depend on
    /// the text, not its place, so the index is unaffected.
    fn compact_text(&mut self) {
        let mut text = String::with_capacity(self.text.len() - self.text_garbage);
        for s in &mut self.slots {
            if s.rec.meta & (LIVE | TEXT_KEY) == LIVE | TEXT_KEY {
                let (off, len) = text_span(&s.key);
                let t = self.text.get(off..off + len).unwrap_or("");
                s.key = text_key(text.len(), t.len());
                text.push_str(t);
            }
        }
        self.text = text;
        self.text_garbage = 0;
    }

    /// Queues the dormancy check of the client just created in `slot`.
    pub fn enqueue(&mut self, slot: u32) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            s.rec.meta |= QUEUED;
            self.dormant.push_back(slot);
        }
    }

    /// Pops the next client whose dormancy check is due at `t` (registered
    /// at least `after` seconds before), skipping entries of evicted
    /// clients. Stops at the first entry not yet due, as a queue in
    /// creation order allows.
    pub fn next_due(&mut self, t: u32, after: u32) -> Option<u32> {
        loop {
            let slot = *self.dormant.front()?;
            if let Some(n) = self.stale.get_mut(&slot) {
                *n -= 1;
                if *n == 0 {
                    self.stale.remove(&slot);
                }
                self.dormant.pop_front();
                continue;
            }
            let Some(s) = self.slots.get_mut(slot as usize) else {
                self.dormant.pop_front();
                continue;
            };
            if s.rec.meta & (LIVE | QUEUED) != LIVE | QUEUED {
                self.dormant.pop_front();
                continue;
            }
            if s.rec.first_seen.saturating_add(after) > t {
                return None;
            }
            s.rec.meta &= !QUEUED;
            self.dormant.pop_front();
            return Some(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(t: u32) -> ClientRecord {
        ClientRecord::new(t)
    }

    fn uuid(n: u128) -> String {
        Uuid::from_u128(n).hyphenated().to_string()
    }

    #[test]
    fn uuid_and_text_ids_round_trip() {
        let mut m = ClientTable::new(10);
        let ids = [
            uuid(1),
            "https://app.example/client.json".to_owned(),
            uuid(0xabc).to_uppercase(), // not canonical: stored as text
            "c1".to_owned(),
        ];
        for (i, id) in ids.iter().enumerate() {
            let (s, created) = m.get_or_insert_with(id, || rec(i as u32));
            assert!(created);
            assert_eq!(m.id_at(s).as_deref(), Some(id.as_str()));
        }
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(m.peek(id).map(|r| r.first_seen), Some(i as u32), "{id}");
            assert!(!m.get_or_insert_with(id, || rec(99)).1);
        }
        assert!(m.peek(&uuid(3)).is_none());
        assert!(m.peek(&uuid(0xabc)).is_none(), "case matters");
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn clock_evicts_unreferenced_first_and_stays_bounded() {
        let mut m = ClientTable::new(3);
        for i in 0..3 {
            m.get_or_insert_with(&format!("c{i}"), || rec(i));
        }
        // c0 is used: the hand passes it once, c1 goes.
        assert!(m.get_mut("c0").is_some());
        m.get_or_insert_with("c3", || rec(3));
        assert!(m.peek("c0").is_some() && m.peek("c1").is_none());
        assert!(m.peek("c2").is_some() && m.peek("c3").is_some());
        assert_eq!((m.len(), m.evictions()), (3, 1));
        // Long text ids: evicted ones leave garbage that gets compacted.
        let long = |i: u32| format!("https://app.example/{i}/{}", "p".repeat(300));
        for i in 4..1000 {
            m.get_or_insert_with(&long(i), || rec(i));
        }
        assert_eq!(m.len(), 3);
        assert!(m.slots.len() <= 3, "slots never exceed the cap");
        assert!(
            m.text.len() <= MIN_COMPACT + 4 * 330,
            "text buffer compacted"
        );
        for i in 997..1000 {
            let s = m.find(&long(i)).expect("recent ids stay");
            assert_eq!(m.id_at(s), Some(long(i)));
        }
    }

    #[test]
    fn dormancy_queue_skips_evicted_clients() {
        let mut m = ClientTable::new(2);
        let (a, _) = m.get_or_insert_with("a", || rec(0));
        m.enqueue(a);
        let (b, _) = m.get_or_insert_with("b", || rec(10));
        m.enqueue(b);
        // "c" evicts "a" and takes its slot; the slot is queued twice now.
        let (c, _) = m.get_or_insert_with("c", || rec(20));
        assert_eq!(c, a);
        m.enqueue(c);
        // At 105 with after = 100, only "a" would be due, and it is gone.
        assert_eq!(m.next_due(105, 100), None);
        assert_eq!(m.dormant_pending(), 2);
        assert_eq!(m.next_due(115, 100), Some(b));
        assert_eq!(m.next_due(115, 100), None);
        assert_eq!(
            m.next_due(120, 100).and_then(|s| m.id_at(s)).as_deref(),
            Some("c")
        );
        assert_eq!(m.dormant_pending(), 0);
        assert!(m.stale.is_empty());
    }
}
