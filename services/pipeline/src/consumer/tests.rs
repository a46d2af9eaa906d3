//! Unit tests of the backoff and of splitting a batch by partition.

use regwatch_schemas::WireEvent;

use super::*;
#[test]
fn backoff_doubles_to_the_cap_and_resets() {
    let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
    let got: Vec<u64> = (0..4).map(|_| b.next_delay().as_millis() as u64).collect();
    assert_eq!(got, vec![100, 200, 350, 350]);
    b.reset();
    assert_eq!(b.next_delay(), Duration::from_millis(100));
}

#[test]
fn take_partitions_splits_events_and_offsets() {
    let event = |client: &str| {
        let mut e = regwatch_schemas::Envelope::new(
            "https://issuer.test",
            regwatch_schemas::Actor::admin("ops"),
            regwatch_schemas::EventPayload::ClientDeleted(regwatch_schemas::ClientDeleted {
                reason: "admin".into(),
                tokens_revoked: 0,
            }),
            chrono::Utc::now(),
        );
        e.client_id = Some(client.into());
        WireEvent::from_envelope(e).expect("json")
    };
    let mut b = Batch::default();
    b.push(event("p0-a"), 0, 3);
    b.note(0, 4);
    b.push(event("p1-a"), 1, 8);
    b.push(event("p0-b"), 0, 4);
    b.note(1, 9);
    b.note(2, 1);
    let bytes = b.bytes;
    let taken = b.take_partitions(&[1, 2].into_iter().collect());
    let clients = |b: &Batch| -> Vec<String> {
        b.events
            .iter()
            .map(|e| e.envelope().client_id.clone().unwrap_or_default())
            .collect()
    };
    assert_eq!(clients(&taken), vec!["p1-a"]);
    assert_eq!(taken.read_at, vec![(1, 8)]);
    assert_eq!(clients(&b), vec!["p0-a", "p0-b"]);
    assert_eq!(b.read_at, vec![(0, 3), (0, 4)]);
    assert_eq!(taken.bytes + b.bytes, bytes);
    assert_eq!(taken.bytes, taken.events[0].json().len());
    assert_eq!(
        taken.next_offsets.into_iter().collect::<Vec<_>>(),
        vec![(1, 10), (2, 2)]
    );
    assert_eq!(b.next_offsets.into_iter().collect::<Vec<_>>(), vec![(0, 5)]);
}
