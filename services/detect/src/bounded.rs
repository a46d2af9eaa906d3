//! A bounded map from string keys to records, with CLOCK (second-chance)
//! eviction: an approximation of LRU that costs one bit per entry.
//!
//! Used for the auxiliary tables (rate keys, hosts, fingerprints, pending
//! names, revoked clients); the client table, which grows with the number
//! of clients, has its own tighter layout in [`crate::clients`].
//!
//! Memory layout: records live in one
//! dense `Vec` of slots; the lookup table maps a keyed 64-bit hash of the
//! key to a slot index (16 bytes an entry), and the key itself is stored
//! once, in the slot, compactly (a canonical UUID takes 16 bytes inline).
//! Two keys with the same 64-bit hash are treated as one key being
//! replaced: the older record is dropped, as if evicted. With a keyed
//! SipHash an attacker cannot aim for that, and by chance it needs ~2^32
//! keys.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use uuid::Uuid;

/// A client id or key, stored compactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompactKey {
    /// A lowercase hyphenated UUID, stored as 16 bytes.
    Uuid([u8; 16]),
    /// Anything else.
    Text(Box<str>),
}

impl CompactKey {
    /// Stores `s`, inline when it is a canonical UUID.
    pub fn new(s: &str) -> Self {
        if s.len() == 36 {
            if let Ok(u) = Uuid::try_parse(s) {
                let mut buf = [0u8; 36];
                if u.hyphenated().encode_lower(&mut buf) == s {
                    return CompactKey::Uuid(*u.as_bytes());
                }
            }
        }
        CompactKey::Text(s.into())
    }

    /// True when this is the key `s`.
    pub fn is(&self, s: &str) -> bool {
        match self {
            CompactKey::Text(t) => &**t == s,
            CompactKey::Uuid(b) => {
                let mut buf = [0u8; 36];
                s.len() == 36 && Uuid::from_bytes(*b).hyphenated().encode_lower(&mut buf) == s
            }
        }
    }

    /// The key as text.
    pub fn as_string(&self) -> String {
        match self {
            CompactKey::Text(t) => t.to_string(),
            CompactKey::Uuid(b) => Uuid::from_bytes(*b).hyphenated().to_string(),
        }
    }
}

/// Hashes a `u64` that is already a good hash: passes it through.
#[derive(Debug, Default, Clone, Copy)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
}

type SlotIndex = HashMap<u64, u32, BuildHasherDefault<PassThrough>>;

#[derive(Debug, Clone)]
struct Slot<V> {
    key: CompactKey,
    referenced: bool,
    value: V,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct BoundedMap<V> {
    hasher: RandomState,
    index: SlotIndex,
    slots: Vec<Option<Slot<V>>>,
    free: Vec<u32>,
    clock: VecDeque<u32>,
    /// Whether a slot index is in `clock`, so a reused slot is not queued
    /// twice and removals never leave the clock growing.
    in_clock: Vec<bool>,
    capacity: usize,
    evictions: u64,
}

impl<V> BoundedMap<V> {
    /// An empty map holding at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        BoundedMap {
            hasher: RandomState::new(),
            index: SlotIndex::default(),
            slots: Vec::new(),
            free: Vec::new(),
            clock: VecDeque::new(),
            in_clock: Vec::new(),
            capacity: capacity.max(1),
            evictions: 0,
        }
    }

    fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Entries dropped so far to stay within capacity.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// The slot holding `key`.
    pub fn slot_of(&self, key: &str) -> Option<u32> {
        let slot = *self.index.get(&self.hash(key))?;
        match self.slots.get(slot as usize) {
            Some(Some(s)) if s.key.is(key) => Some(slot),
            _ => None,
        }
    }

    /// The record for `key`, without marking it used.
    pub fn peek(&self, key: &str) -> Option<&V> {
        let slot = self.slot_of(key)?;
        self.slots.get(slot as usize)?.as_ref().map(|s| &s.value)
    }

    /// The record for `key`, marked as used.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let slot = self.slot_of(key)?;
        let s = self.slots.get_mut(slot as usize)?.as_mut()?;
        s.referenced = true;
        Some(&mut s.value)
    }

    /// Key and record in a slot.
    pub fn at_slot(&self, slot: u32) -> Option<(&CompactKey, &V)> {
        self.slots
            .get(slot as usize)?
            .as_ref()
            .map(|s| (&s.key, &s.value))
    }

    /// Record in a slot, mutable.
    pub fn at_slot_mut(&mut self, slot: u32) -> Option<&mut V> {
        self.slots
            .get_mut(slot as usize)?
            .as_mut()
            .map(|s| &mut s.value)
    }

    /// The record for `key`, created by `make` when absent (evicting the
    /// least recently used entry when full). Returns the slot and whether
    /// it was created.
    pub fn get_or_insert_with(&mut self, key: &str, make: impl FnOnce() -> V) -> (u32, bool) {
        if let Some(slot) = self.slot_of(key) {
            if let Some(Some(s)) = self.slots.get_mut(slot as usize) {
                s.referenced = true;
            }
            return (slot, false);
        }
        let h = self.hash(key);
        // A different key with the same hash: replace it (see module docs).
        if let Some(old) = self.index.remove(&h) {
            self.release(old);
        }
        if self.index.len() >= self.capacity {
            self.evict_one();
        }
        let slot_value = Slot {
            key: CompactKey::new(key),
            referenced: false,
            value: make(),
        };
        let slot = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(slot_value);
                i
            }
            None => {
                self.slots.push(Some(slot_value));
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(h, slot);
        if self.in_clock.len() <= slot as usize {
            self.in_clock.resize(slot as usize + 1, false);
        }
        if !self.in_clock[slot as usize] {
            self.in_clock[slot as usize] = true;
            self.clock.push_back(slot);
        }
        (slot, true)
    }

    /// Removes `key`; returns its record.
    pub fn remove(&mut self, key: &str) -> Option<V> {
        let slot = self.slot_of(key)?;
        let h = self.hash(key);
        self.index.remove(&h);
        let taken = self.slots.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        Some(taken.value)
    }

    fn release(&mut self, slot: u32) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            if s.take().is_some() {
                self.free.push(slot);
                self.evictions += 1;
            }
        }
        // The clock may still list the slot: `evict_one` skips it while
        // empty, and a reused slot keeps its place instead of a second one.
    }

    fn evict_one(&mut self) {
        // Each pass clears at most every reference bit once, so two rounds
        // over the clock always find a victim.
        let rounds = self.clock.len() * 2 + 1;
        for _ in 0..rounds {
            let Some(slot) = self.clock.pop_front() else {
                return;
            };
            if let Some(f) = self.in_clock.get_mut(slot as usize) {
                *f = false;
            }
            match self.slots.get_mut(slot as usize) {
                Some(Some(s)) if s.referenced => {
                    s.referenced = false;
                    self.clock.push_back(slot);
                    if let Some(f) = self.in_clock.get_mut(slot as usize) {
                        *f = true;
                    }
                }
                Some(Some(s)) => {
                    let h = self.hasher.hash_one(s.key.as_string().as_str());
                    self.index.remove(&h);
                    self.release(slot);
                    return;
                }
                _ => {} // stale entry for a released slot
            }
        }
    }
}
