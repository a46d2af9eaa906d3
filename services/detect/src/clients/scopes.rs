//! [`ScopeInterner`]: scope strings as bits of a `u64`, so a
//! [`ClientRecord`](super::ClientRecord) holds the scopes a client asked
//! for and was granted in 16 bytes.

/// Interns scope strings to bits of a `u64` (63 named, bit 63 = any other).
/// Bits are given out in first-seen order, so the same observations give
/// the same bits.
#[derive(Debug, Clone, Default)]
pub struct ScopeInterner {
    names: Vec<Box<str>>,
}

impl ScopeInterner {
    fn bit(&mut self, s: &str) -> u64 {
        if let Some(i) = self.names.iter().position(|n| &**n == s) {
            return 1 << i;
        }
        if self.names.len() < 63 {
            self.names.push(s.into());
            return 1 << (self.names.len() - 1);
        }
        1 << 63
    }

    /// The bits of `scopes`, interning the new ones.
    pub fn bits(&mut self, scopes: &[String]) -> u64 {
        scopes.iter().fold(0, |acc, s| acc | self.bit(s))
    }

    /// The scopes of `bits`, in interning order; `(other)` for bit 63.
    pub fn decode(&self, bits: u64) -> Vec<String> {
        let mut out: Vec<String> = self
            .names
            .iter()
            .enumerate()
            .filter(|(i, _)| bits & (1 << i) != 0)
            .map(|(_, n)| n.to_string())
            .collect();
        if bits & (1 << 63) != 0 {
            out.push("(other)".to_owned());
        }
        out
    }
}
