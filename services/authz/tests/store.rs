//! Store conformance, run against SQLite and PostgreSQL: group commit,
//! the outbox cursor, publication marks.

mod common;

use chrono::Utc;
use common::*;
use regwatch_authz::events;
use regwatch_authz::store::{ClientRow, ClientStatus, RegistrationWriter};
use regwatch_schemas::{Actor, ClientMetadata, ClientRegistered, EventPayload, RegistrationMethod};

fn client(id: &str) -> (ClientRow, regwatch_schemas::Envelope) {
    let now = Utc::now();
    let row = ClientRow {
        client_id: id.to_string(),
        registration_method: RegistrationMethod::Dcr,
        metadata: ClientMetadata {
            client_name: Some(format!("client {id}")),
            ..Default::default()
        },
        secret_hash: None,
        rat_hash: Some("0".repeat(64)),
        status: ClientStatus::Active,
        created_at: now.timestamp_millis(),
        updated_at: now.timestamp_millis(),
        last_seen_at: now.timestamp_millis(),
        consented_at: None,
        source_ip: None,
        version: 1,
    };
    let ev = events::event(
        "http://127.0.0.1:8400",
        Some(id),
        Actor::client(id),
        EventPayload::ClientRegistered(ClientRegistered {
            registration_method: RegistrationMethod::Dcr,
            metadata: row.metadata.clone(),
            confidential: false,
            dropped_fields: vec![],
            initial_access_token: false,
        }),
        &Default::default(),
        now,
    );
    (row, ev)
}

async fn group_commit_isolates_a_bad_registration(backend: Backend) {
    let h = open(backend, config()).await;
    let store = h.state.store.clone();
    // A client that already exists: its duplicate must fail alone.
    let (dup, dup_ev) = client("dup");
    store.insert_client(&dup, &dup_ev).await.unwrap();
    let writer = RegistrationWriter::spawn(store.clone());
    let mut jobs = Vec::new();
    for i in 0..200 {
        let w = writer.clone();
        let (row, ev) = if i == 100 {
            client("dup")
        } else {
            client(&format!("c{i:03}"))
        };
        jobs.push(tokio::spawn(async move { w.insert(row, ev).await }));
    }
    let mut failed = 0;
    for (i, j) in jobs.into_iter().enumerate() {
        match j.await.unwrap() {
            Ok(()) => assert_ne!(i, 100),
            Err(_) => {
                assert_eq!(i, 100, "{}", h.name);
                failed += 1;
            }
        }
    }
    assert_eq!(failed, 1);
    assert_eq!(h.clients().await, 200, "{}", h.name);
    assert_eq!(
        store.outbox().count().await.unwrap(),
        200,
        "one event per stored client, none for the failure"
    );
}

async fn outbox_cursor_and_publication(backend: Backend) {
    let h = open(backend, config()).await;
    let store = h.state.store.clone();
    for i in 0..5 {
        let (row, ev) = client(&format!("k{i}"));
        store.insert_client(&row, &ev).await.unwrap();
    }
    let all = store.outbox().after(0, 100).await.unwrap();
    assert_eq!(all.len(), 5);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    let tail = store.outbox().after(all[2].seq, 100).await.unwrap();
    assert_eq!(
        tail.iter()
            .map(|r| r.client_id.clone().unwrap())
            .collect::<Vec<_>>(),
        vec!["k3", "k4"]
    );
    assert_eq!(store.outbox().backlog().await.unwrap(), 5);
    store
        .outbox()
        .mark_published(&[all[0].seq, all[1].seq], Utc::now().timestamp_millis())
        .await
        .unwrap();
    assert_eq!(store.outbox().backlog().await.unwrap(), 3);
    assert_eq!(
        store.outbox().unpublished(10).await.unwrap()[0].seq,
        all[2].seq
    );
}

on_both_backends!(
    group_commit_isolates_a_bad_registration,
    outbox_cursor_and_publication,
);
