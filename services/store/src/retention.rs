//! Retention as the running processes do it (`[retention]`): every
//! `check_interval_minutes` the store drops the day partitions of events
//! older than `keep_days` ([`EventStore::apply_retention`]), after the
//! export hook archived each one. Off unless `keep_days` is set.
//!
//! The archive is one JSON Lines file per day (`events-YYYYMMDD.jsonl`, each
//! line an envelope of the contract), written to a temporary name, fsynced
//! and renamed before the partition may go: a crash mid-export leaves no
//! half file under the final name and drops nothing.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde::Deserialize;

use crate::{EventStore, ExportHook, RetentionReport, StoreError};

/// `[retention]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Keep this many full days of events before today (UTC); 0 keeps
    /// everything (retention off).
    pub keep_days: u32,
    /// How often to look for partitions to drop.
    pub check_interval_minutes: u64,
    /// Export each partition here (JSON Lines) before it is dropped. Unset:
    /// partitions are dropped without an archive.
    pub export_dir: Option<PathBuf>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            keep_days: 0,
            check_interval_minutes: 60,
            export_dir: None,
        }
    }
}

/// A `[retention]` value out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value for `retention.{key}`: {reason}")]
pub struct RetentionConfigError {
    /// The key under `[retention]`, e.g. `check_interval_minutes`.
    pub key: &'static str,
    pub reason: &'static str,
}

impl RetentionConfig {
    /// Check every value; the error names the bad key.
    pub fn validate(&self) -> Result<(), RetentionConfigError> {
        let bad = |key, reason| Err(RetentionConfigError { key, reason });
        if self.check_interval_minutes == 0 {
            return bad("check_interval_minutes", "must be positive");
        }
        if self
            .export_dir
            .as_ref()
            .is_some_and(|d| d.as_os_str().is_empty())
        {
            return bad("export_dir", "must not be empty");
        }
        Ok(())
    }
}

/// Archives a day partition as `events-YYYYMMDD.jsonl` in a directory.
pub struct JsonlExport {
    store: Arc<dyn EventStore>,
    dir: PathBuf,
}

impl JsonlExport {
    pub fn new(store: Arc<dyn EventStore>, dir: PathBuf) -> Self {
        JsonlExport { store, dir }
    }
}

fn export_error(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Rejected(format!("export before drop: {what}: {e}"))
}

#[async_trait]
impl ExportHook for JsonlExport {
    async fn export_partition(&self, partition_id: &str) -> crate::Result<()> {
        let day = NaiveDate::parse_from_str(partition_id, "%Y%m%d")
            .map_err(|e| export_error(&format!("partition {partition_id}"), e))?;
        let since: DateTime<Utc> =
            Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default());
        let until = since + chrono::Duration::days(1);
        let mut body = Vec::new();
        crate::scan_events(self.store.as_ref(), since, until, |events| {
            for e in events {
                serde_json::to_writer(&mut body, e).map_err(|e| export_error("serialize", e))?;
                body.push(b'\n');
            }
            Ok(())
        })
        .await?;
        let dir = self.dir.clone();
        let name = format!("events-{partition_id}.jsonl");
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let tmp = dir.join(format!(".{name}.partial"));
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
            std::fs::rename(&tmp, dir.join(&name))?;
            // The rename is durable only once the directory is.
            std::fs::File::open(&dir)?.sync_all()
        })
        .await
        .map_err(|e| export_error("task", e))?
        .map_err(|e| export_error(&self.dir.display().to_string(), e))
    }
}

/// One pass: export then drop what is past `keep_days` at `now`. Nothing
/// when retention is off (`keep_days = 0`).
pub async fn run_once(
    store: &Arc<dyn EventStore>,
    cfg: &RetentionConfig,
    now: DateTime<Utc>,
) -> crate::Result<RetentionReport> {
    if cfg.keep_days == 0 {
        return Ok(RetentionReport::default());
    }
    match &cfg.export_dir {
        Some(dir) => {
            let hook = JsonlExport::new(store.clone(), dir.clone());
            store.apply_retention(cfg.keep_days, now, &hook).await
        }
        None => {
            store
                .apply_retention(cfg.keep_days, now, &crate::NoExport)
                .await
        }
    }
}

/// Passes every `check_interval_minutes` until `shutdown`; a failed pass is
/// logged and tried again at the next interval. Returns at once when
/// retention is off.
pub async fn run(
    store: Arc<dyn EventStore>,
    cfg: RetentionConfig,
    shutdown: impl std::future::Future<Output = ()>,
) {
    if cfg.keep_days == 0 {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(cfg.check_interval_minutes * 60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => {}
        }
        match run_once(&store, &cfg, Utc::now()).await {
            Ok(r) if r.dropped.is_empty() => {}
            Ok(r) => {
                tracing::info!(dropped = ?r.dropped, "retention: old event partitions dropped")
            }
            Err(e) => tracing::warn!(error = %e, "retention pass failed; partitions kept"),
        }
    }
}
