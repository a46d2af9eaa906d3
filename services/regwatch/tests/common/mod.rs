//! Shared harness of the end-to-end tests on real parts: the gates, ports
//! and tansu process come from `regwatch-testkit`; this adds the project's
//! three topics.

#![allow(dead_code, unused_imports)]

pub use regwatch_testkit::{env_or_skip, free_port, wait_until, TansuBroker};

/// The events (3 partitions), dead-letter and alerts topics.
pub async fn create_topics(brokers: &str) {
    regwatch_testkit::create_topics(
        brokers,
        &[
            (regwatch_schemas::EVENTS_TOPIC, 3),
            (regwatch_schemas::DLQ_TOPIC, 1),
            (regwatch_schemas::ALERTS_TOPIC, 1),
        ],
    )
    .await;
}

/// The authorization server with its outbox relay, as `regwatch authz`
/// with a `[relay]` table runs it, in this process; stopped on drop.
pub struct AuthzWithRelay {
    pub issuer: String,
    pub store: regwatch_authz::Store,
    pub relay: std::sync::Arc<regwatch_relay::RelayMetrics>,
    stop: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl AuthzWithRelay {
    /// On `database_url`, or a fresh SQLite file when `None`; the rate
    /// limit is off (the tests register in bulk from one address).
    pub async fn start(
        database_url: Option<String>,
        relay: regwatch_relay::RelayConfig,
    ) -> AuthzWithRelay {
        let dir = tempfile::tempdir().unwrap();
        let database_url = database_url
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("authz.db").display()));
        let mut cfg = regwatch_authz::AuthzConfig {
            database_url,
            ..Default::default()
        };
        cfg.rate_limit.per_minute = 0;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        cfg.issuer = issuer.clone();
        let store = regwatch_authz::Store::connect(&cfg.database_url, 1)
            .await
            .unwrap();
        let relay = regwatch_relay::Relay::new(store.outbox(), relay).unwrap();
        let metrics = relay.metrics();
        let (stop, rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.changed().await;
        };
        tokio::spawn(relay.run(stopped(rx.clone())));
        tokio::spawn(regwatch_authz::run(
            regwatch_authz::AppState::new(cfg, store.clone()),
            listener,
            stopped(rx),
        ));
        AuthzWithRelay {
            issuer,
            store,
            relay: metrics,
            stop,
            _dir: dir,
        }
    }
}

impl Drop for AuthzWithRelay {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
