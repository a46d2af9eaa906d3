//! The windowed page reader shared by event pages, event scans and alert
//! pages: ClickHouse 18.16 reads everything after a cursor, so a page is
//! read window by window, sized by counting first.

use crate::cursor;
use crate::sql::Lit;
use crate::{EventQuery, Result};

use super::rows::{KeyRow, NextRow, PageRow};
use super::schema::render;
use super::{queries, ClickHouseStore};

/// Cut a page fetched with `limit + 1` rows down to `limit`; the cursor
/// of its last row when there was more.
pub(super) fn trim_page<R: SortKey>(rows: &mut Vec<R>, limit: u32) -> Option<String> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    match rows.last() {
        Some(last) if more => Some(cursor::encode(last.sort_ms(), last.sort_id())),
        _ => None,
    }
}

/// The first time window one event page query covers. ClickHouse 18.16
/// cannot stop reading at `LIMIT` when rows must come out in sort-key order
/// (no read-in-order optimization, and `FINAL` merges whatever it reads),
/// so one query over `[cursor, until)` reads every event after the cursor:
/// 1 s per page at 700k events left, which made a start-up rebuild of 1M
/// events take quarter of an hour (BENCHMARKS.md, "Detector state
/// rebuild"). A page is read window by window instead: a window this wide
/// is read directly (at 1,000 events/s it holds ten API pages); a wider one
/// is counted first and narrowed when dense (`ClickHouseStore::read_page`).
pub(super) const PAGE_WINDOW_MS: u64 = 10_000;

/// The first window an alerts page reads. Alerts are far sparser than
/// events (an ongoing condition updates one alert), so the first window is
/// wide, and counted before it is read like any window wider than
/// [`PAGE_WINDOW_MS`].
pub(super) const ALERT_WINDOW_MS: u64 = 3_600_000;

/// Events per [`EventStore::scan_events`] batch.
pub(super) const SCAN_PAGE: usize = 10_000;

/// The page filters as query values (`any_*` = 1 when unset).
pub(super) struct PageFilters([(&'static str, Lit); 4]);

impl PageFilters {
    pub(super) fn new(q: &EventQuery) -> Self {
        let (any_type, event_type) = opt_str(q.event_type.map(|t| t.as_str().to_string()));
        let (any_client, client_id) = opt_str(q.client_id.clone());
        PageFilters([
            ("any_event_type", Lit::UInt(any_type)),
            ("event_type", event_type),
            ("any_client_id", Lit::UInt(any_client)),
            ("client_id", client_id),
        ])
    }

    /// The events table's windowed read with these filters.
    pub(super) fn windowed(&self) -> Windowed<'_> {
        Windowed {
            page: queries::EVENTS_PAGE,
            page_filters: &self.0,
            span: queries::EVENTS_SPAN,
            span_filters: &self.0,
        }
    }
}

/// What [`ClickHouseStore::read_page`] reads: one table's page query and
/// span query (query files), with the filter values each takes. Both take
/// the same filters except where the span cannot judge one cheaply (the
/// alerts' status, which needs FINAL): a span that ignores a filter counts
/// too much, which only narrows a window more than needed or jumps short of
/// the next match, never past it.
pub(super) struct Windowed<'a> {
    /// `since_ms`, `until_ms`, `after_ms`, `after_id`, `limit` and the page
    /// filters; rows in `(ms, id)` order.
    pub(super) page: &'static str,
    pub(super) page_filters: &'a [(&'static str, Lit)],
    /// `from_ms`, `until_ms` and the span filters; one row `(count, first ms)`.
    pub(super) span: &'static str,
    pub(super) span_filters: &'a [(&'static str, Lit)],
}

/// A page row's sort key `(ms, id)`: what a page cursor resumes after.
pub(super) trait SortKey {
    fn sort_ms(&self) -> u64;
    fn sort_id(&self) -> &str;
}

impl SortKey for PageRow {
    fn sort_ms(&self) -> u64 {
        self.occurred_at_ms
    }
    fn sort_id(&self) -> &str {
        &self.event_id
    }
}

impl SortKey for KeyRow {
    fn sort_ms(&self) -> u64 {
        self.ms
    }
    fn sort_id(&self) -> &str {
        &self.id
    }
}
impl ClickHouseStore {
    /// Up to `want` rows of `w` (events, or alert keys) after `after` with
    /// sort-key milliseconds in `[since, until)`, in sort-key order, read
    /// window by window (see [`PAGE_WINDOW_MS`]), starting with
    /// `[lo, lo + window)`:
    /// - a window wider than [`PAGE_WINDOW_MS`] is counted first (`w.span`,
    ///   sort key and filter columns only) and narrowed to about 1.25x what
    ///   the page still needs when it holds more than twice that, so a dense
    ///   stretch is never read whole;
    /// - a window with some rows but fewer than needed makes the next one 4x
    ///   wider; an empty one jumps to the next row the span accepts, keeping
    ///   the wider window (sparse data stays cheap).
    ///
    /// Also returns a window for the next page: about 1.25 pages at the
    /// density of the last window read.
    pub(super) async fn read_page<R>(
        &self,
        w: &Windowed<'_>,
        since: u64,
        until: u64,
        after: &cursor::Position,
        want: usize,
        window: u64,
    ) -> Result<(Vec<R>, u64)>
    where
        R: clickhouse::RowOwned + clickhouse::RowRead + SortKey,
    {
        let mut lo = since.max(after.ms);
        let mut window = window.max(1);
        let mut rows: Vec<R> = Vec::new();
        while rows.len() < want && lo < until {
            let need = (want - rows.len()) as u64;
            let mut hi = lo.saturating_add(window).min(until);
            if hi - lo > PAGE_WINDOW_MS {
                let span = self.span(w, lo, hi).await?;
                if span.events == 0 {
                    match self.next_event_ms(w, hi, until).await? {
                        Some(ms) => lo = ms,
                        None => break,
                    }
                    window = window.saturating_mul(4);
                    continue;
                }
                if span.events > 2 * need {
                    window = ((hi - lo).saturating_mul(need + need / 4) / span.events).max(1);
                    hi = lo.saturating_add(window).min(until);
                }
            }
            let mut values = vec![
                ("since_ms", Lit::UInt(lo)),
                ("until_ms", Lit::UInt(hi)),
                ("after_ms", Lit::UInt(after.ms)),
                ("after_id", Lit::Str(after.id.clone())),
                ("limit", Lit::UInt(need)),
            ];
            values.extend(w.page_filters.iter().cloned());
            let sql = render(w.page, &values)?;
            let got = self.client.query_raw(&sql).fetch_all::<R>().await?;
            if got.is_empty() {
                match self.next_event_ms(w, hi, until).await? {
                    Some(ms) => lo = ms,
                    None => break,
                }
                window = window.saturating_mul(4);
                continue;
            }
            let (n, last_ms) = (got.len() as u64, got[got.len() - 1].sort_ms());
            rows.extend(got);
            if n >= need {
                // `n` rows in `last_ms - lo + 1` ms: a window for `want`
                // rows at that density, plus a quarter.
                let span = (last_ms.saturating_sub(lo) + 1).saturating_mul(want as u64) / n;
                return Ok((rows, span.saturating_add(span / 4).max(1)));
            }
            lo = hi;
            window = window.saturating_mul(4);
        }
        Ok((rows, window))
    }

    /// How many rows the span filters accept in `[from, until)`, and the
    /// earliest one's sort-key milliseconds.
    async fn span(&self, w: &Windowed<'_>, from: u64, until: u64) -> Result<NextRow> {
        let mut values = vec![("from_ms", Lit::UInt(from)), ("until_ms", Lit::UInt(until))];
        values.extend(w.span_filters.iter().cloned());
        let sql = render(w.span, &values)?;
        Ok(self.client.query_raw(&sql).fetch_one::<NextRow>().await?)
    }

    /// The first row the span filters accept at or after `from` (and before
    /// `until`); always `>= from`, so a caller moving to it moves forward.
    async fn next_event_ms(&self, w: &Windowed<'_>, from: u64, until: u64) -> Result<Option<u64>> {
        let span = self.span(w, from, until).await?;
        Ok((span.events > 0).then_some(span.first_ms.max(from)))
    }
}

/// An optional filter as query values: `(any, value)`, `any` = 1 when unset.
pub(super) fn opt_str(v: Option<String>) -> (u64, Lit) {
    match v {
        Some(s) => (0, Lit::Str(s)),
        None => (1, Lit::Str(String::new())),
    }
}
