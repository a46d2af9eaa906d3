use chrono::Utc;
use regwatch_authz::store::{ClientRow, ClientStatus, RegistrationWriter, Store};
use regwatch_schemas::*;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("w.db").display());
    let store = Store::connect(&url, 1).await.unwrap();
    let w = RegistrationWriter::spawn(store.clone());
    for conc in [1usize, 4, 16, 64] {
        let n = 20_000 / conc * conc;
        let t = Instant::now();
        let mut hs = Vec::new();
        for k in 0..conc {
            let w = w.clone();
            hs.push(tokio::spawn(async move {
                for i in 0..n / conc {
                    let id = format!("c{conc}_{k}_{i}");
                    let now = Utc::now();
                    let md = ClientMetadata {
                        client_name: Some(id.clone()),
                        redirect_uris: vec!["http://127.0.0.1:1/cb".into()],
                        ..Default::default()
                    };
                    let row = ClientRow {
                        client_id: id.clone(),
                        registration_method: RegistrationMethod::Dcr,
                        metadata: md.clone(),
                        secret_hash: None,
                        rat_hash: Some("a".repeat(64)),
                        status: ClientStatus::Active,
                        created_at: 0,
                        updated_at: 0,
                        last_seen_at: 0,
                        consented_at: None,
                        source_ip: None,
                        version: 1,
                    };
                    let mut ev = Envelope::new(
                        "http://x",
                        Actor::client(&id),
                        EventPayload::ClientRegistered(ClientRegistered {
                            registration_method: RegistrationMethod::Dcr,
                            metadata: md,
                            confidential: false,
                            dropped_fields: vec![],
                            initial_access_token: false,
                        }),
                        now,
                    );
                    ev.client_id = Some(id);
                    w.insert(row, ev).await.unwrap();
                }
            }));
        }
        for h in hs {
            h.await.unwrap();
        }
        println!(
            "concurrency {conc}: {:.0}/s",
            n as f64 / t.elapsed().as_secs_f64()
        );
    }
}
