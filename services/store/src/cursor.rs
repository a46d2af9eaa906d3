//! The page cursor: opaque to callers, `(milliseconds, id)` inside — the
//! sort key of the last row of the previous page. Base64url of
//! `v1:<ms>:<id>`, so it survives a query string untouched.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::{Result, StoreError};

/// The sort key a page resumes after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub ms: u64,
    pub id: String,
}

pub fn encode(ms: u64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{ms}:{id}"))
}

pub fn decode(cursor: &str) -> Result<Position> {
    let bad = || StoreError::InvalidQuery("cursor is not one this store issued".into());
    if cursor.len() > 256 {
        return Err(bad());
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let rest = text.strip_prefix("v1:").ok_or_else(bad)?;
    let (ms, id) = rest.split_once(':').ok_or_else(bad)?;
    let ms = ms.parse::<u64>().map_err(|_| bad())?;
    // Ids are UUIDs in text form; refuse anything else rather than pass
    // arbitrary text on to a query.
    let id = uuid::Uuid::parse_str(id).map_err(|_| bad())?;
    Ok(Position {
        ms,
        id: id.to_string(),
    })
}

/// Where a page starts: after the cursor, or at the beginning.
pub(crate) fn start(cursor: Option<&str>) -> Result<Position> {
    match cursor {
        Some(c) => decode(c),
        None => Ok(Position {
            ms: 0,
            id: String::new(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let id = "0190f0a2-7b1c-7d2e-8f00-0123456789ab";
        let c = encode(1_700_000_000_123, id);
        assert_eq!(
            decode(&c).ok(),
            Some(Position {
                ms: 1_700_000_000_123,
                id: id.into()
            })
        );
        for bad in [
            "",
            "!!",
            &URL_SAFE_NO_PAD.encode("v2:1:x"),
            &URL_SAFE_NO_PAD.encode("v1:x:y"),
        ] {
            assert!(
                matches!(decode(bad), Err(StoreError::InvalidQuery(_))),
                "{bad}"
            );
        }
        let injected = URL_SAFE_NO_PAD.encode("v1:1:' OR 1=1 --");
        assert!(decode(&injected).is_err());
    }
}
