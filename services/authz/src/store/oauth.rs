//! Authorization codes, consent and token state. Same rule as the rest of
//! the store: a state change commits with its event.

use regwatch_schemas::Envelope;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Result, Store, TokenRow};

/// One authorization code, by hash.
#[derive(Debug, Clone)]
pub struct CodeRow {
    pub code_hash: String,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    /// Space-separated.
    pub scopes: String,
    pub resource: String,
    /// Tokens issued from this code share it, so a replayed code can
    /// revoke them (RFC 6749 §4.1.2).
    pub family_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// A token with its state.
#[derive(Debug, Clone)]
pub struct TokenState {
    pub row: TokenRow,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

fn code_from_row(r: &AnyRow) -> Result<CodeRow> {
    Ok(CodeRow {
        code_hash: r.try_get("code_hash")?,
        client_id: r.try_get("client_id")?,
        user_id: r.try_get("user_id")?,
        redirect_uri: r.try_get("redirect_uri")?,
        code_challenge: r.try_get("code_challenge")?,
        scopes: r.try_get("scopes")?,
        resource: r.try_get("resource")?,
        family_id: r.try_get("family_id")?,
        issued_at: r.try_get("issued_at")?,
        expires_at: r.try_get("expires_at")?,
        used_at: r.try_get("used_at")?,
    })
}

fn token_from_row(r: &AnyRow) -> Result<TokenState> {
    Ok(TokenState {
        row: TokenRow {
            token_hash: r.try_get("token_hash")?,
            token_id: r.try_get("token_id")?,
            kind: r.try_get("kind")?,
            client_id: r.try_get("client_id")?,
            user_id: r.try_get("user_id")?,
            family_id: r.try_get("family_id")?,
            scopes: r.try_get("scopes")?,
            resource: r.try_get("resource")?,
            issued_at: r.try_get("issued_at")?,
            expires_at: r.try_get("expires_at")?,
        },
        used_at: r.try_get("used_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

impl Store {
    /// The user approved: store the code, note the client's first consent,
    /// write `consent.granted`.
    pub async fn grant_consent(&self, code: &CodeRow, now_ms: i64, ev: &Envelope) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO auth_codes (code_hash, client_id, user_id, redirect_uri, code_challenge, scopes, resource, family_id, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(code.code_hash.clone())
        .bind(code.client_id.clone())
        .bind(code.user_id.clone())
        .bind(code.redirect_uri.clone())
        .bind(code.code_challenge.clone())
        .bind(code.scopes.clone())
        .bind(code.resource.clone())
        .bind(code.family_id.clone())
        .bind(code.issued_at)
        .bind(code.expires_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE clients SET consented_at = COALESCE(consented_at, $1), last_seen_at = $1 WHERE client_id = $2")
            .bind(now_ms)
            .bind(code.client_id.clone())
            .execute(&mut *tx)
            .await?;
        self.check_fault()?;
        regwatch_outbox::append(&mut tx, ev).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_code(&self, code_hash: &str) -> Result<Option<CodeRow>> {
        let r = sqlx::query("SELECT * FROM auth_codes WHERE code_hash = $1")
            .bind(code_hash.to_string())
            .fetch_optional(&self.pool)
            .await?;
        r.as_ref().map(code_from_row).transpose()
    }

    /// Use a code once and issue its tokens, atomically. `false` when the
    /// code was used meanwhile (a replay): nothing is issued.
    pub async fn redeem_code(
        &self,
        code_hash: &str,
        now_ms: i64,
        tokens: &[TokenRow],
        ev: &Envelope,
    ) -> Result<bool> {
        self.spend_and_issue(
            "UPDATE auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL",
            code_hash,
            now_ms,
            tokens,
            ev,
        )
        .await
    }

    /// Mark one credential spent with `spend_sql` (`$1` = now, `$2` = key)
    /// and, if it was not spent already, issue `tokens` with their event
    /// and slide the client's idle TTL; all in one transaction.
    async fn spend_and_issue(
        &self,
        spend_sql: &str,
        key: &str,
        now_ms: i64,
        tokens: &[TokenRow],
        ev: &Envelope,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(spend_sql)
            .bind(now_ms)
            .bind(key.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        Self::insert_tokens_tx(&mut tx, tokens).await?;
        sqlx::query("UPDATE clients SET last_seen_at = $1 WHERE client_id = $2")
            .bind(now_ms)
            .bind(
                tokens
                    .first()
                    .map(|t| t.client_id.clone())
                    .unwrap_or_default(),
            )
            .execute(&mut *tx)
            .await?;
        self.check_fault()?;
        regwatch_outbox::append(&mut tx, ev).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn get_token(&self, token_hash: &str) -> Result<Option<TokenState>> {
        let r = sqlx::query("SELECT * FROM tokens WHERE token_hash = $1")
            .bind(token_hash.to_string())
            .fetch_optional(&self.pool)
            .await?;
        r.as_ref().map(token_from_row).transpose()
    }

    /// Rotate a refresh token: mark it used and issue its successors,
    /// atomically. `false` when it was used meanwhile (reuse).
    pub async fn rotate_refresh(
        &self,
        old_hash: &str,
        now_ms: i64,
        tokens: &[TokenRow],
        ev: &Envelope,
    ) -> Result<bool> {
        self.spend_and_issue(
            "UPDATE tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND revoked_at IS NULL",
            old_hash,
            now_ms,
            tokens,
            ev,
        )
        .await
    }

    /// Revoke every live token of a family (refresh reuse, code replay,
    /// RFC 7009 on a refresh token). The event is built from the count.
    pub async fn revoke_family<F: FnOnce(u64) -> Envelope>(
        &self,
        family_id: &str,
        now_ms: i64,
        make_event: F,
    ) -> Result<u64> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
        )
        .bind(now_ms)
        .bind(family_id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        self.check_fault()?;
        regwatch_outbox::append(&mut tx, &make_event(n)).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Revoke one token (RFC 7009 on an access token). Returns false when
    /// it was already revoked (nothing written).
    pub async fn revoke_one(&self, token_hash: &str, now_ms: i64, ev: &Envelope) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
        )
        .bind(now_ms)
        .bind(token_hash.to_string())
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
}
