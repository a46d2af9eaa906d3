//! Client lifecycle: a sliding idle TTL (every use moves `last_seen_at`),
//! a shorter TTL for clients that never reached consent, and the sweep
//! that expires them, revokes their tokens and emits `client.expired`.

use chrono::{DateTime, Utc};
use regwatch_schemas::{Actor, ClientExpired, EventPayload};

use crate::events::{self, RequestCtx};
use crate::store::{ClientStatus, Result};
use crate::AppState;

/// Expire what is due at `now`; returns how many clients expired.
pub async fn sweep_once(st: &AppState, now: DateTime<Utc>) -> Result<usize> {
    let lc = &st.cfg.lifecycle;
    let now_ms = now.timestamp_millis();
    let idle_cutoff = now_ms - (lc.idle_ttl_secs as i64).saturating_mul(1000);
    let unconsented_cutoff = now_ms - (lc.unconsented_ttl_secs as i64).saturating_mul(1000);
    let due = st
        .store
        .expiry_candidates(idle_cutoff, unconsented_cutoff, lc.sweep_batch)
        .await?;
    let mut expired = 0;
    for c in due {
        let (reason, ttl) = if c.consented_at.is_none() && c.created_at < unconsented_cutoff {
            ("never_consented", lc.unconsented_ttl_secs)
        } else {
            ("idle", lc.idle_ttl_secs)
        };
        let last_seen = DateTime::from_timestamp_millis(c.last_seen_at).unwrap_or(now);
        let res = st
            .store
            .transition(
                &c.client_id,
                &[ClientStatus::Active],
                ClientStatus::Expired,
                true,
                now_ms,
                |n| {
                    let payload = EventPayload::ClientExpired(ClientExpired {
                        reason: reason.into(),
                        ttl_seconds: ttl,
                        last_seen_at: last_seen,
                        tokens_revoked: n,
                    });
                    events::event(
                        &st.issuer,
                        Some(&c.client_id),
                        Actor::system("lifecycle"),
                        payload,
                        &RequestCtx::default(),
                        now,
                    )
                },
            )
            .await?;
        if res.is_some() {
            expired += 1;
            tracing::info!(client_id = %c.client_id, reason, "client expired");
        }
    }
    Ok(expired)
}

/// Run the sweep every `sweep_interval_secs` until `stop` turns true.
pub async fn run_sweeper(st: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let every = std::time::Duration::from_secs(st.cfg.lifecycle.sweep_interval_secs);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = sweep_once(&st, Utc::now()).await {
                    tracing::warn!(error = %e, "expiry sweep failed; will retry");
                }
                st.admission.housekeeping(std::time::Instant::now());
            }
            _ = stop.changed() => return,
        }
    }
}
