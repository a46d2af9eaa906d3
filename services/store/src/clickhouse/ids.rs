//! What `insert_events` knows about stored ids: the bounded memory of ids
//! known to be stored, and the existence check for the rest (see the
//! module docs of `clickhouse` for why memory may only answer "stored").

use std::collections::{HashSet, VecDeque};

use regwatch_schemas::WireEvent;
use uuid::Uuid;

use crate::sql::Lit;
use crate::{EventColumns, Result};

use super::rows::IdRow;
use super::schema::render;
use super::{queries, ClickHouseStore};

/// Ids per existence check: one query for a default 5,000-event batch,
/// still below `max_query_size` (256 KiB by default; 5,000 quoted UUIDs
/// are 200,000 bytes).
const EXISTING_CHUNK: usize = 5000;

/// Event ids the recent-ids set holds by default (~13 MB).
pub const DEFAULT_RECENT_IDS: usize = 1 << 18;

/// Event ids known to be stored: written by this instance (after
/// ClickHouse acknowledged the insert) or reported stored by an existence
/// check. Bounded: the oldest entry leaves first. See the module docs for
/// why it may only ever answer "stored".
pub(super) struct RecentIds {
    capacity: usize,
    set: HashSet<Uuid>,
    order: VecDeque<Uuid>,
}

impl RecentIds {
    pub(super) fn new(capacity: usize) -> Self {
        RecentIds {
            capacity,
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    pub(super) fn contains(&self, id: &Uuid) -> bool {
        self.set.contains(id)
    }

    pub(super) fn insert(&mut self, id: Uuid) {
        if self.capacity == 0 || !self.set.insert(id) {
            return;
        }
        self.order.push_back(id);
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }

    pub(super) fn clear(&mut self) {
        self.set.clear();
        self.order.clear();
    }
}

impl ClickHouseStore {
    /// Which of `rows` are stored already, one query per
    /// [`EXISTING_CHUNK`] ids, each bounded by its rows' time range.
    pub(super) async fn existing_ids(
        &self,
        rows: &[(&WireEvent, EventColumns)],
    ) -> Result<HashSet<Uuid>> {
        let mut found = HashSet::new();
        for chunk in rows.chunks(EXISTING_CHUNK) {
            let min_ms = chunk
                .iter()
                .map(|(_, c)| c.occurred_at_ms)
                .min()
                .unwrap_or(0);
            let max_ms = chunk
                .iter()
                .map(|(_, c)| c.occurred_at_ms)
                .max()
                .unwrap_or(0);
            let q = render(
                queries::EVENTS_EXISTING,
                &[
                    ("min_ms", Lit::UInt(min_ms)),
                    ("max_ms", Lit::UInt(max_ms)),
                    (
                        "event_ids",
                        Lit::StrList(chunk.iter().map(|(_, c)| c.event_id.clone()).collect()),
                    ),
                ],
            )?;
            for row in self.client.query_raw(&q).fetch_all::<IdRow>().await? {
                // Only ids of this chunk can match, and they parse.
                if let Ok(id) = Uuid::parse_str(&row.event_id) {
                    found.insert(id);
                }
            }
        }
        Ok(found)
    }
}
