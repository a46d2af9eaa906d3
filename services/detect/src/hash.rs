//! A stable 64-bit hash (FNV-1a). Used where a value must be the same in
//! every process and every run: fingerprints, deterministic alert ids and
//! compact history sets. Lookup tables that face attacker-chosen keys use
//! std's keyed SipHash instead.

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// Incremental FNV-1a hasher.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(OFFSET)
    }
}

impl Fnv {
    /// Feeds bytes.
    pub fn bytes(mut self, b: &[u8]) -> Self {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(PRIME);
        }
        self
    }

    /// Feeds a string followed by a separator, so ("ab","c") != ("a","bc").
    pub fn field(self, s: &str) -> Self {
        self.bytes(s.as_bytes()).bytes(&[0xff])
    }

    /// The hash so far.
    pub fn finish(self) -> u64 {
        // Final avalanche (from splitmix64) so low bits are usable as a u32.
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Hash of one string.
pub fn hash_str(s: &str) -> u64 {
    Fnv::default().bytes(s.as_bytes()).finish()
}

/// 32-bit hash of one string, for compact membership sets where a false
/// "seen before" costs at most one missed low-weight signal (p = 2^-32).
pub fn hash32(s: &str) -> u32 {
    // Truncation is the point: the high bits are mixed by `finish`.
    (hash_str(s) >> 32) as u32
}
