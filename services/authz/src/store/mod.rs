//! The authorization server's store: clients, tokens and the transactional
//! outbox, on SQLite (default) or PostgreSQL through one code path
//! (`sqlx::Any`, `$n` placeholders, which both accept).
//!
//! Invariant: every state change and its event commit in one transaction.
//! No method here changes a client, a token or a grant without taking the
//! event to write beside it. The event goes through `regwatch-outbox`
//! (which owns the outbox table's SQL) inside that transaction; readers
//! (relay, embedded pipeline) get a [`regwatch_outbox::Outbox`] on the same
//! pool from [`Store::outbox`].

mod batch;
mod migrate;
mod oauth;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use regwatch_schemas::{ClientMetadata, Envelope, RegistrationMethod};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Executor, Row, Transaction};

pub use batch::{RegistrationWriter, MAX_BATCH};
pub use migrate::MIGRATIONS;
pub use oauth::{CodeRow, TokenState};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
    #[error("migration {version}: {source}")]
    Migration { version: i64, source: sqlx::Error },
    #[error("fault injected: {0}")]
    Injected(&'static str),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("registration writer stopped")]
    WriterStopped,
}

/// The outbox's errors as this store has always reported them.
impl From<regwatch_outbox::OutboxError> for StoreError {
    fn from(e: regwatch_outbox::OutboxError) -> Self {
        match e {
            regwatch_outbox::OutboxError::Db(e) => StoreError::Db(e),
            regwatch_outbox::OutboxError::Sqlite(e) => StoreError::Sqlite(e),
            regwatch_outbox::OutboxError::Serialize(e) => StoreError::Corrupt(e.to_string()),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Client lifecycle states. Only `Active` clients may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientStatus {
    Active,
    Disabled,
    Revoked,
    Deleted,
    Expired,
}

impl ClientStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientStatus::Active => "active",
            ClientStatus::Disabled => "disabled",
            ClientStatus::Revoked => "revoked",
            ClientStatus::Deleted => "deleted",
            ClientStatus::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => ClientStatus::Active,
            "disabled" => ClientStatus::Disabled,
            "revoked" => ClientStatus::Revoked,
            "deleted" => ClientStatus::Deleted,
            "expired" => ClientStatus::Expired,
            _ => return None,
        })
    }
}

/// One client as stored. Secrets are hashes only.
#[derive(Debug, Clone)]
pub struct ClientRow {
    pub client_id: String,
    pub registration_method: RegistrationMethod,
    pub metadata: ClientMetadata,
    pub secret_hash: Option<String>,
    pub rat_hash: Option<String>,
    pub status: ClientStatus,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_seen_at: i64,
    pub consented_at: Option<i64>,
    pub source_ip: Option<String>,
    /// Optimistic-concurrency version, bumped by every update.
    pub version: i64,
}

/// One issued token, by hash.
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub token_hash: String,
    /// Public id (a prefix of the hash), what events carry.
    pub token_id: String,
    /// `access_token` or `refresh_token`.
    pub kind: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub family_id: Option<String>,
    /// Space-separated.
    pub scopes: String,
    pub resource: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// Test-only fault injection: fail a transaction after its state change
/// and before its event, to prove the two commit together.
#[derive(Debug, Default)]
pub struct Faults {
    pub fail_before_event: AtomicBool,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    faults: Arc<Faults>,
    /// The database file, for SQLite (the registration writer opens it).
    sqlite_path: Option<std::path::PathBuf>,
}

const CLIENT_COLS: &str = "client_id, registration_method, metadata, secret_hash, rat_hash, status, created_at, updated_at, last_seen_at, consented_at, source_ip, version";

pub(crate) fn method_str(m: RegistrationMethod) -> &'static str {
    match m {
        RegistrationMethod::Dcr => "dcr",
        RegistrationMethod::Cimd => "cimd",
    }
}

fn client_from_row(r: &AnyRow) -> Result<ClientRow> {
    let method: String = r.try_get("registration_method")?;
    let status: String = r.try_get("status")?;
    let metadata: String = r.try_get("metadata")?;
    Ok(ClientRow {
        client_id: r.try_get("client_id")?,
        registration_method: match method.as_str() {
            "dcr" => RegistrationMethod::Dcr,
            "cimd" => RegistrationMethod::Cimd,
            m => return Err(StoreError::Corrupt(format!("registration_method {m:?}"))),
        },
        metadata: serde_json::from_str(&metadata)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        secret_hash: r.try_get("secret_hash")?,
        rat_hash: r.try_get("rat_hash")?,
        status: ClientStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("status {status:?}")))?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        consented_at: r.try_get("consented_at")?,
        source_ip: r.try_get("source_ip")?,
        version: r.try_get("version")?,
    })
}

impl Store {
    /// Connect, and apply migrations. `sqlite://path` creates the file.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if url.starts_with("sqlite:") {
            let u = if url.contains("mode=") {
                url.to_string()
            } else if url.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            };
            (Backend::Sqlite, u)
        } else {
            (Backend::Postgres, url.to_string())
        };
        // SQLite has one writer: a single connection commits back to back
        // instead of several waiting in SQLite's sleeping busy handler.
        let max = if backend == Backend::Sqlite {
            1
        } else {
            max_connections.max(1)
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL + NORMAL: a commit survives a process crash;
                        // see BENCHMARKS.md for FULL.
                        conn.execute("PRAGMA journal_mode=WAL").await?;
                        conn.execute("PRAGMA synchronous=NORMAL").await?;
                        conn.execute("PRAGMA busy_timeout=5000").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        let sqlite_path = (backend == Backend::Sqlite).then(|| {
            let rest = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:");
            std::path::PathBuf::from(rest.split('?').next().unwrap_or(rest))
        });
        let store = Store {
            pool,
            backend,
            faults: Arc::new(Faults::default()),
            sqlite_path,
        };
        migrate::run(&store).await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        self.sqlite_path.as_deref()
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The outbox of this database, on the same pool (for the relay and
    /// the embedded pipeline, which read it without depending on authz).
    pub fn outbox(&self) -> regwatch_outbox::Outbox {
        regwatch_outbox::Outbox::new(self.pool.clone())
    }

    async fn begin(&self) -> Result<Transaction<'static, Any>> {
        Ok(self.pool.begin().await?)
    }

    pub(crate) fn check_fault(&self) -> Result<()> {
        if self.faults.fail_before_event.load(Ordering::SeqCst) {
            return Err(StoreError::Injected("fail_before_event"));
        }
        Ok(())
    }

    /// Record an event that changes no state (a rejected registration).
    pub async fn record_event(&self, ev: &Envelope) -> Result<()> {
        Ok(self.outbox().record(ev).await?)
    }

    /// Create a client and its `client.registered` event atomically.
    pub async fn insert_client(&self, c: &ClientRow, ev: &Envelope) -> Result<()> {
        let mut tx = self.begin().await?;
        let md =
            serde_json::to_string(&c.metadata).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(&format!(
            "INSERT INTO clients ({CLIENT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(c.client_id.clone())
        .bind(method_str(c.registration_method))
        .bind(md)
        .bind(c.secret_hash.clone())
        .bind(c.rat_hash.clone())
        .bind(c.status.as_str())
        .bind(c.created_at)
        .bind(c.updated_at)
        .bind(c.last_seen_at)
        .bind(c.consented_at)
        .bind(c.source_ip.clone())
        .bind(c.version)
        .execute(&mut *tx)
        .await?;
        self.check_fault()?;
        regwatch_outbox::append(&mut tx, ev).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Create many clients and their events in ONE transaction (group
    /// commit): two multi-row inserts instead of two statements per client.
    /// All or nothing; the caller retries one by one on failure so one bad
    /// row cannot fail its neighbours.
    pub async fn insert_clients_batch(&self, items: &[(ClientRow, Envelope)]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        let mut sql = format!("INSERT INTO clients ({CLIENT_COLS}) VALUES ");
        for i in 0..items.len() {
            let b = i * 12;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${},${},${},${},${},${},${},${},${},${},${},${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8,
                b + 9,
                b + 10,
                b + 11,
                b + 12
            ));
        }
        let mut q = sqlx::query(&sql);
        for (c, _) in items {
            let md = serde_json::to_string(&c.metadata)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            q = q
                .bind(c.client_id.clone())
                .bind(method_str(c.registration_method))
                .bind(md)
                .bind(c.secret_hash.clone())
                .bind(c.rat_hash.clone())
                .bind(c.status.as_str())
                .bind(c.created_at)
                .bind(c.updated_at)
                .bind(c.last_seen_at)
                .bind(c.consented_at)
                .bind(c.source_ip.clone())
                .bind(c.version);
        }
        q.execute(&mut *tx).await?;
        self.check_fault()?;
        regwatch_outbox::append_all(&mut tx, items.iter().map(|(_, ev)| ev)).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_client(&self, client_id: &str) -> Result<Option<ClientRow>> {
        let row = sqlx::query(&format!(
            "SELECT {CLIENT_COLS} FROM clients WHERE client_id = $1"
        ))
        .bind(client_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(client_from_row).transpose()
    }

    /// Replace a client's metadata and registration token if it is still at
    /// `c.version - 1` and active. Returns false when it changed under us.
    pub async fn update_client(&self, c: &ClientRow, ev: &Envelope) -> Result<bool> {
        let mut tx = self.begin().await?;
        let md =
            serde_json::to_string(&c.metadata).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let n = sqlx::query(
            "UPDATE clients SET metadata = $1, rat_hash = $2, updated_at = $3, last_seen_at = $4, version = $5 \
             WHERE client_id = $6 AND version = $7 AND status = 'active'",
        )
        .bind(md)
        .bind(c.rat_hash.clone())
        .bind(c.updated_at)
        .bind(c.last_seen_at)
        .bind(c.version)
        .bind(c.client_id.clone())
        .bind(c.version - 1)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        self.check_fault()?;
        regwatch_outbox::append(&mut tx, ev).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Move a client from one of `from` to `to`; when `kill_tokens`, revoke
    /// every live token of the client in the same transaction. The event is
    /// built by `make_event` from the number of tokens revoked. Returns
    /// `None` when the client was not in one of `from` (nothing written).
    pub async fn transition<F>(
        &self,
        client_id: &str,
        from: &[ClientStatus],
        to: ClientStatus,
        kill_tokens: bool,
        now_ms: i64,
        make_event: F,
    ) -> Result<Option<(u64, Envelope)>>
    where
        F: FnOnce(u64) -> Envelope,
    {
        let mut tx = self.begin().await?;
        let list = from
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(",");
        let n = sqlx::query(&format!(
            "UPDATE clients SET status = $1, updated_at = $2, rat_hash = CASE WHEN $3 = 1 THEN NULL ELSE rat_hash END, version = version + 1 \
             WHERE client_id = $4 AND status IN ({list})"
        ))
        .bind(to.as_str())
        .bind(now_ms)
        .bind(i64::from(matches!(to, ClientStatus::Deleted | ClientStatus::Revoked | ClientStatus::Expired)))
        .bind(client_id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        let revoked = if kill_tokens {
            sqlx::query(
                "UPDATE tokens SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL",
            )
            .bind(now_ms)
            .bind(client_id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected()
        } else {
            0
        };
        self.check_fault()?;
        let ev = make_event(revoked);
        regwatch_outbox::append(&mut tx, &ev).await?;
        tx.commit().await?;
        Ok(Some((revoked, ev)))
    }

    /// Store issued tokens and their event atomically.
    pub async fn insert_tokens(&self, tokens: &[TokenRow], ev: &Envelope) -> Result<()> {
        let mut tx = self.begin().await?;
        Self::insert_tokens_tx(&mut tx, tokens).await?;
        self.check_fault()?;
        regwatch_outbox::append(&mut tx, ev).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_tokens_tx(
        tx: &mut Transaction<'static, Any>,
        tokens: &[TokenRow],
    ) -> Result<()> {
        for t in tokens {
            sqlx::query(
                "INSERT INTO tokens (token_hash, token_id, kind, client_id, user_id, family_id, scopes, resource, issued_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(t.token_hash.clone())
            .bind(t.token_id.clone())
            .bind(t.kind.clone())
            .bind(t.client_id.clone())
            .bind(t.user_id.clone())
            .bind(t.family_id.clone())
            .bind(t.scopes.clone())
            .bind(t.resource.clone())
            .bind(t.issued_at)
            .bind(t.expires_at)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Slide the idle TTL: the client was just used.
    pub async fn touch(&self, client_id: &str, now_ms: i64) -> Result<()> {
        sqlx::query(
            "UPDATE clients SET last_seen_at = $1 WHERE client_id = $2 AND last_seen_at < $1",
        )
        .bind(now_ms)
        .bind(client_id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Active clients past a TTL: idle ones, and ones that never consented.
    pub async fn expiry_candidates(
        &self,
        idle_cutoff_ms: i64,
        unconsented_cutoff_ms: i64,
        limit: u32,
    ) -> Result<Vec<ClientRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {CLIENT_COLS} FROM clients WHERE status = 'active' AND \
             (last_seen_at < $1 OR (consented_at IS NULL AND created_at < $2)) ORDER BY last_seen_at LIMIT $3"
        ))
        .bind(idle_cutoff_ms)
        .bind(unconsented_cutoff_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(client_from_row).collect()
    }

    /// Clients ordered by id, after `after`, optionally of one status.
    pub async fn list_clients(
        &self,
        status: Option<ClientStatus>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ClientRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {CLIENT_COLS} FROM clients WHERE ($1 = '' OR status = $1) AND client_id > $2 ORDER BY client_id LIMIT $3"
        ))
        .bind(status.map(|s| s.as_str()).unwrap_or("").to_string())
        .bind(after.unwrap_or("").to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(client_from_row).collect()
    }

    pub async fn count_clients(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM clients")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    /// Live (unrevoked, unexpired) tokens of a client.
    pub async fn live_tokens(&self, client_id: &str, now_ms: i64) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM tokens WHERE client_id = $1 AND revoked_at IS NULL AND expires_at > $2")
            .bind(client_id.to_string())
            .bind(now_ms)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }
}
