//! Name indexes for lookalike checks: an exact map on the folded skeleton
//! and a symmetric-deletion index for small edit distances (every string
//! with up to `depth` characters deleted points at the names it came from;
//! two keys within distance d share a variant). A lookup costs a few dozen
//! hash probes, independent of how many names are indexed.

use std::collections::{HashMap, VecDeque};

use serde::Serialize;

use crate::config::ProtectedName;
use crate::hash::{hash_str, Fnv};

/// The built-in protected names: well-known MCP clients and the registrable
/// domains, schemes and loopback use of their owners.
pub fn builtin_protected() -> Vec<ProtectedName> {
    fn p(
        name: &str,
        domains: &[&str],
        schemes: &[&str],
        loopback: bool,
        word: bool,
    ) -> ProtectedName {
        ProtectedName {
            name: name.to_owned(),
            domains: domains.iter().map(|s| (*s).to_owned()).collect(),
            schemes: schemes.iter().map(|s| (*s).to_owned()).collect(),
            loopback_allowed: loopback,
            match_as_word: word,
        }
    }
    vec![
        p("ChatGPT", &["chatgpt.com", "openai.com"], &[], false, true),
        p("OpenAI", &["chatgpt.com", "openai.com"], &[], false, false),
        p("Claude", &["claude.ai", "anthropic.com"], &[], false, true),
        p(
            "Claude Code",
            &["claude.ai", "anthropic.com"],
            &[],
            true,
            false,
        ),
        p(
            "Claude Desktop",
            &["claude.ai", "anthropic.com"],
            &["claude"],
            true,
            false,
        ),
        p(
            "Cursor",
            &["cursor.com", "cursor.sh"],
            &["cursor"],
            true,
            false,
        ),
        p(
            "Visual Studio Code",
            &["visualstudio.com", "microsoft.com", "vscode.dev"],
            &["vscode", "vscode-insiders"],
            true,
            false,
        ),
        p(
            "VS Code",
            &["visualstudio.com", "microsoft.com", "vscode.dev"],
            &["vscode", "vscode-insiders"],
            true,
            false,
        ),
        p("GitHub Copilot", &["github.com"], &["vscode"], true, true),
        p(
            "Windsurf",
            &["windsurf.com", "codeium.com"],
            &["windsurf"],
            true,
            true,
        ),
        p("Gemini", &["google.com"], &[], false, false),
        p("Gemini CLI", &["google.com"], &[], true, false),
        p("Perplexity", &["perplexity.ai"], &[], false, true),
        p("Zed", &["zed.dev"], &["zed"], true, false),
        p("Cline", &["cline.bot"], &["vscode"], true, false),
        p("Raycast", &["raycast.com"], &["raycast"], true, true),
        p("MCP Inspector", &[], &[], true, false),
    ]
}

/// Up to two entry ids without a heap allocation; more spill to a vector.
#[derive(Debug, Clone)]
enum Ids {
    One(u32),
    Two(u32, u32),
    // Boxed on purpose: keeps `Ids` at 16 bytes in a map of millions.
    #[allow(clippy::box_collection)]
    Many(Box<Vec<u32>>),
}

impl Ids {
    fn push(&mut self, id: u32) {
        *self = match std::mem::replace(self, Ids::One(id)) {
            Ids::One(a) if a == id => Ids::One(a),
            Ids::One(a) => Ids::Two(a, id),
            Ids::Two(a, b) if a == id || b == id => Ids::Two(a, b),
            Ids::Two(a, b) => Ids::Many(Box::new(vec![a, b, id])),
            Ids::Many(mut v) => {
                if !v.contains(&id) {
                    v.push(id);
                }
                Ids::Many(v)
            }
        };
    }

    /// Removes `id`; returns true when nothing is left.
    fn remove(&mut self, id: u32) -> bool {
        match self {
            Ids::One(a) => *a == id,
            Ids::Two(a, b) => {
                if *a == id {
                    *self = Ids::One(*b);
                } else if *b == id {
                    *self = Ids::One(*a);
                }
                false
            }
            Ids::Many(v) => {
                v.retain(|x| *x != id);
                match v.len() {
                    0 => true,
                    1 => {
                        *self = Ids::One(v[0]);
                        false
                    }
                    _ => false,
                }
            }
        }
    }

    fn for_each(&self, mut f: impl FnMut(u32)) {
        match self {
            Ids::One(a) => f(*a),
            Ids::Two(a, b) => {
                f(*a);
                f(*b)
            }
            Ids::Many(v) => v.iter().copied().for_each(f),
        }
    }
}

/// Every string obtained by deleting up to `depth` (at most 2) characters
/// of `key` (the key itself included), as stable hashes, sorted, without
/// duplicates. Hashes are computed by skipping characters, without
/// building the strings.
pub fn deletion_variants(key: &str, depth: u8) -> Vec<u64> {
    let chars: Vec<char> = key.chars().collect();
    let n = chars.len();
    let hash_skip = |a: usize, b: usize| {
        let mut h = Fnv::default();
        let mut buf = [0u8; 4];
        for (k, c) in chars.iter().enumerate() {
            if k != a && k != b {
                h = h.bytes(c.encode_utf8(&mut buf).as_bytes());
            }
        }
        h.finish()
    };
    let mut out = vec![hash_str(key)];
    if depth >= 1 && n > 1 {
        out.extend((0..n).map(|i| hash_skip(i, usize::MAX)));
    }
    if depth >= 2 && n > 2 {
        for i in 0..n {
            out.extend((i + 1..n).map(|j| hash_skip(i, j)));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Optimal-string-alignment distance between two keys, stopping early
/// once it exceeds `max` (returns `max + 1` then).
pub fn bounded_distance(a: &str, b: &str, max: usize) -> usize {
    let la = a.chars().count();
    let lb = b.chars().count();
    if la.abs_diff(lb) > max {
        return max + 1;
    }
    strsim::osa_distance(a, b).min(max + 1)
}

/// One indexed name.
#[derive(Debug, Clone)]
struct Entry<T> {
    key: Box<str>,
    data: T,
    variants: Box<[u64]>,
}

/// A match found by [`SymIndex::lookup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IndexMatch {
    /// Entry id.
    pub id: u32,
    /// Edit distance between the folded keys (0 = same skeleton).
    pub distance: u8,
}

/// An index of folded name keys with attached data `T`, bounded to
/// `capacity` entries (oldest inserted goes first).
#[derive(Debug, Clone)]
pub struct SymIndex<T> {
    depth: u8,
    capacity: usize,
    entries: Vec<Option<Entry<T>>>,
    free: Vec<u32>,
    order: VecDeque<u32>,
    by_key: HashMap<u64, Ids>,
    by_variant: HashMap<u64, Ids>,
}

impl<T> SymIndex<T> {
    /// An empty index answering edit distances up to `depth` (0..=2).
    pub fn new(depth: u8, capacity: usize) -> Self {
        SymIndex {
            depth: depth.min(2),
            capacity: capacity.max(1),
            entries: Vec::new(),
            free: Vec::new(),
            order: VecDeque::new(),
            by_key: HashMap::new(),
            by_variant: HashMap::new(),
        }
    }

    /// Number of names indexed.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The id of the entry with exactly this key.
    pub fn find_exact(&self, key: &str) -> Option<u32> {
        let mut found = None;
        if let Some(ids) = self.by_key.get(&hash_str(key)) {
            ids.for_each(|id| {
                if self.key(id) == Some(key) {
                    found = Some(id);
                }
            });
        }
        found
    }

    /// The data of an entry.
    pub fn get(&self, id: u32) -> Option<&T> {
        self.entries.get(id as usize)?.as_ref().map(|e| &e.data)
    }

    /// The data of an entry, mutable.
    pub fn get_mut(&mut self, id: u32) -> Option<&mut T> {
        self.entries
            .get_mut(id as usize)?
            .as_mut()
            .map(|e| &mut e.data)
    }

    /// The key of an entry.
    pub fn key(&self, id: u32) -> Option<&str> {
        self.entries.get(id as usize)?.as_ref().map(|e| &*e.key)
    }

    /// Inserts a key (or returns the existing entry with that key).
    /// Returns the id and whether an older entry was evicted to make room.
    pub fn insert(&mut self, key: &str, data: T) -> (u32, bool) {
        if let Some(id) = self.find_exact(key) {
            return (id, false);
        }
        let mut evicted = false;
        if self.order.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.remove(old);
                evicted = true;
            }
        }
        let variants: Box<[u64]> = if self.depth == 0 {
            Box::new([])
        } else {
            deletion_variants(key, self.depth).into_boxed_slice()
        };
        let entry = Entry {
            key: key.into(),
            data,
            variants,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.entries[id as usize] = Some(entry);
                id
            }
            None => {
                self.entries.push(Some(entry));
                (self.entries.len() - 1) as u32
            }
        };
        self.order.push_back(id);
        self.by_key
            .entry(hash_str(key))
            .and_modify(|ids| ids.push(id))
            .or_insert(Ids::One(id));
        if let Some(Some(e)) = self.entries.get(id as usize) {
            for v in e.variants.iter() {
                self.by_variant
                    .entry(*v)
                    .and_modify(|ids| ids.push(id))
                    .or_insert(Ids::One(id));
            }
        }
        (id, evicted)
    }

    fn remove(&mut self, id: u32) {
        let Some(entry) = self.entries.get_mut(id as usize).and_then(Option::take) else {
            return;
        };
        let kh = hash_str(&entry.key);
        if self.by_key.get_mut(&kh).is_some_and(|ids| ids.remove(id)) {
            self.by_key.remove(&kh);
        }
        for v in entry.variants.iter() {
            if self.by_variant.get_mut(v).is_some_and(|ids| ids.remove(id)) {
                self.by_variant.remove(v);
            }
        }
        self.free.push(id);
    }

    /// Entries whose key is within `max_distance` of `key`, closest first.
    /// `min_len_for` gives, per distance 1 and 2, the shortest key length at
    /// which that distance still counts as a lookalike.
    pub fn lookup(&self, key: &str, max_distance: u8, min_len_for: [usize; 2]) -> Vec<IndexMatch> {
        let mut out: Vec<IndexMatch> = Vec::new();
        if let Some(ids) = self.by_key.get(&hash_str(key)) {
            ids.for_each(|id| {
                if self.key(id) == Some(key) {
                    out.push(IndexMatch { id, distance: 0 });
                }
            });
        }
        let depth = max_distance.min(self.depth);
        if depth == 0 {
            return out;
        }
        let qlen = key.chars().count();
        let mut candidates: Vec<u32> = Vec::new();
        for v in deletion_variants(key, depth) {
            if let Some(ids) = self.by_variant.get(&v) {
                ids.for_each(|id| {
                    if !candidates.contains(&id) && !out.iter().any(|m| m.id == id) {
                        candidates.push(id);
                    }
                });
            }
        }
        for id in candidates {
            let Some(k) = self.key(id) else { continue };
            let d = bounded_distance(key, k, usize::from(depth));
            if d == 0 || d > usize::from(depth) {
                continue;
            }
            let shortest = qlen.min(k.chars().count());
            if shortest < min_len_for[d - 1] {
                continue;
            }
            out.push(IndexMatch {
                id,
                distance: d as u8,
            });
        }
        out.sort_by_key(|m| (m.distance, m.id));
        out
    }
}
