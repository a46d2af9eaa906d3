//! Time as the correlation state stores it: whole seconds since
//! 2020-01-01T00:00:00Z in a `u32` (good until 2156), half the size of a
//! timestamp in every record. Converted from the observation's time, never
//! read from a clock.

use chrono::{DateTime, TimeZone, Utc};

/// 2020-01-01T00:00:00Z as a Unix timestamp.
const EPOCH: i64 = 1_577_836_800;

/// `at` on the state's time scale (saturating at both ends).
pub fn state_secs(at: DateTime<Utc>) -> u32 {
    u32::try_from((at.timestamp() - EPOCH).max(0)).unwrap_or(u32::MAX)
}

/// The instant `t` seconds into the state's time scale.
pub fn from_state_secs(t: u32) -> DateTime<Utc> {
    Utc.timestamp_opt(EPOCH + i64::from(t), 0)
        .single()
        .unwrap_or_default()
}
