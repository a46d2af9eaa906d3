//! The detectors' state survives a restart of the scaled pipeline: a new
//! `StoreAndDetect` sink rebuilt from the store sees a burst that started before the
//! restart. Without the rebuild the same events after the restart stay
//! below the floor (checked too, so the test can tell the two apart).

use std::sync::Arc;

use chrono::{Duration, Utc};
use regwatch_detect::{DetectConfig, Detector};
use regwatch_pipeline::store_detect::StoreAndDetect;
use regwatch_pipeline::EventSink;
use regwatch_schemas::{
    Actor, AlertKind, ClientMetadata, ClientRegistered, Envelope, EventPayload, RegistrationMethod,
    Source, WireEvent,
};
use regwatch_store::{AlertQuery, EventStore};

fn registration(i: usize, at: chrono::DateTime<Utc>) -> WireEvent {
    let mut e = Envelope::new(
        "https://as.example",
        Actor::client(format!("c{i}")),
        EventPayload::ClientRegistered(ClientRegistered {
            registration_method: RegistrationMethod::Dcr,
            metadata: ClientMetadata {
                client_name: Some(format!("Tool {i} {}", ["Alpha", "Beta", "Gamma"][i % 3])),
                redirect_uris: vec![format!("https://app{i}.example-{i}.net/cb")],
                ..Default::default()
            },
            confidential: false,
            dropped_fields: vec![],
            initial_access_token: false,
        }),
        at,
    );
    e.client_id = Some(uuid::Uuid::now_v7().to_string());
    e.source = Some(Source {
        ip: Some("198.51.100.77".into()),
        user_agent: None,
    });
    WireEvent::from_envelope(e).unwrap()
}

async fn bursts(store: &Arc<dyn EventStore>) -> usize {
    store
        .query_alerts(&AlertQuery {
            kind: Some(AlertKind::RegistrationBurst),
            ..Default::default()
        })
        .await
        .unwrap()
        .alerts
        .len()
}

async fn sqlite_store(dir: &tempfile::TempDir) -> Arc<dyn EventStore> {
    Arc::new(
        regwatch_store::sqlite::SqliteStore::open(&dir.path().join("events.db"))
            .await
            .unwrap(),
    )
}

/// A fresh process's sink: default detectors, empty state.
fn sink(store: &Arc<dyn EventStore>) -> StoreAndDetect {
    StoreAndDetect::new(
        store.clone(),
        Detector::new(DetectConfig::default()).unwrap(),
        None,
    )
}

async fn run(rebuild: bool) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let now = Utc::now();
    // Five registrations from one address (floor: 8 in 5 minutes)…
    let before = sink(&store);
    let first: Vec<WireEvent> = (0..5)
        .map(|i| registration(i, now - Duration::seconds(60 - i as i64)))
        .collect();
    before.write(&first).await.unwrap();
    assert_eq!(bursts(&store).await, 0);
    drop(before);
    // …the process restarts…
    let after = sink(&store);
    if rebuild {
        let read = after.rebuild(now - Duration::days(1), now).await.unwrap();
        assert_eq!(read, 5);
    }
    // …and five more arrive within the same window.
    let second: Vec<WireEvent> = (5..10)
        .map(|i| registration(i, now - Duration::seconds(30 - i as i64)))
        .collect();
    after.write(&second).await.unwrap();
    bursts(&store).await
}

#[tokio::test]
async fn a_burst_spanning_a_restart_is_seen_after_a_rebuild() {
    assert_eq!(
        run(false).await,
        0,
        "without the rebuild the restart hides the burst"
    );
    assert_eq!(
        run(true).await,
        1,
        "with it, the tenth registration crosses the floor"
    );
}

/// After a crash the consumer reads again what the crashed process stored
/// but never committed. Those events are in the store, so the rebuild has
/// already observed them: observing them again would count each twice.
/// Here five registrations from one address (floor 8) are stored, the
/// process restarts and rebuilds, and the same five arrive again.
#[tokio::test]
async fn the_uncommitted_tail_is_observed_once_after_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let now = Utc::now();
    let tail: Vec<WireEvent> = (0..5)
        .map(|i| registration(i, now - Duration::seconds(60 - i as i64)))
        .collect();
    // A second process that started (and rebuilt) before the tail was
    // written: the group hands it the partition after the crash.
    let other = sink(&store);
    assert_eq!(
        other.rebuild(now - Duration::days(1), now).await.unwrap(),
        0
    );
    let crashed = sink(&store);
    crashed.write(&tail).await.unwrap();
    drop(crashed);

    let restarted = sink(&store);
    assert_eq!(
        restarted
            .rebuild(now - Duration::days(1), now)
            .await
            .unwrap(),
        5
    );
    restarted.write(&tail).await.unwrap();
    assert_eq!(bursts(&store).await, 0, "the replayed tail counted twice");
    assert_eq!(restarted.replays_skipped(), 5);

    // The process that never observed the tail observes it now, once: with
    // three more it crosses the floor (5 + 3 = 8).
    other.write(&tail).await.unwrap();
    assert_eq!(other.replays_skipped(), 0);
    assert_eq!(bursts(&store).await, 0);
    let more: Vec<WireEvent> = (5..8)
        .map(|i| registration(i, now - Duration::seconds(30 - i as i64)))
        .collect();
    other.write(&more).await.unwrap();
    assert_eq!(bursts(&store).await, 1);
}
