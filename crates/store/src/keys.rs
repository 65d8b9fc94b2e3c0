//! API keys and what a tenant stores: the `api_keys` table of both SQL
//! stores, and the usage figures the quotas are checked against.
//!
//! A key is `hzn_<id>_<secret>`: `id` (16 hex digits) finds its row, the
//! secret (256 random bits, 64 hex digits) is never stored, only its SHA-256,
//! compared in constant time. The plaintext is shown once, when created.

use crate::rows::now_ms;
use crate::StoreError;
use async_trait::async_trait;
use protocol::Tenant;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, SqlitePool};
use subtle::ConstantTimeEq;

const PREFIX: &str = "hzn_";

/// A key as listed: never its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyInfo {
    pub id: String,
    pub tenant: Tenant,
    pub created_at_ms: i64,
    pub revoked: bool,
}

/// A new key: its plaintext (show it once) and the row that stores it.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub plaintext: String,
    pub id: String,
    pub tenant: Tenant,
    hash: String,
}

impl NewKey {
    /// A fresh random key for `tenant`.
    pub fn generate(tenant: &Tenant) -> Self {
        let mut rng = rand::rngs::OsRng;
        let mut id = [0u8; 8];
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut id);
        rng.fill_bytes(&mut secret);
        let (id, secret) = (hex::encode(id), hex::encode(secret));
        Self {
            plaintext: format!("{PREFIX}{id}_{secret}"),
            hash: hash(&secret),
            id,
            tenant: tenant.clone(),
        }
    }
}

/// What a tenant keeps in the store: series and bytes of fitted state, over
/// the versions that did not fail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub series: u64,
    pub bytes: u64,
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Splits a presented key into its id and secret; `None` if it cannot be one.
pub fn split_key(presented: &str) -> Option<(&str, &str)> {
    let (id, secret) = presented.strip_prefix(PREFIX)?.split_once('_')?;
    let hexish = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hexish(id, 16) && hexish(secret, 64)).then_some((id, secret))
}

/// Whether `secret` hashes to `stored_hash`, in constant time.
fn matches(secret: &str, stored_hash: &str) -> bool {
    hash(secret).as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

/// The `api_keys` table, and tenants' usage.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// Stores a key made by [`NewKey::generate`].
    async fn insert_key(&self, key: &NewKey) -> Result<(), StoreError>;

    /// The tenant of a presented key, if it is a live key.
    async fn authenticate(&self, presented: &str) -> Result<Option<Tenant>, StoreError> {
        let Some((id, secret)) = split_key(presented) else {
            return Ok(None);
        };
        Ok(match self.key_row(id).await? {
            Some((tenant, stored_hash, revoked)) if !revoked && matches(secret, &stored_hash) => {
                Some(Tenant::parse(&tenant).map_err(|e| StoreError::Internal(e.to_string()))?)
            }
            _ => None,
        })
    }

    /// The tenant, hash and revoked flag of key `id`.
    async fn key_row(&self, id: &str) -> Result<Option<(String, String, bool)>, StoreError>;

    /// Every key, or those of one tenant, oldest first.
    async fn list_keys(&self, tenant: Option<&Tenant>) -> Result<Vec<KeyInfo>, StoreError>;

    /// Revokes key `id` (the part after `hzn_`, or the whole key); `false`
    /// if there is no such live key of `tenant`.
    async fn revoke_key(&self, tenant: &Tenant, id: &str) -> Result<bool, StoreError>;

    /// Whether any key is live: then the API asks every request for one.
    async fn has_live_keys(&self) -> Result<bool, StoreError>;

    /// What `tenant` stores now.
    async fn usage(&self, tenant: &Tenant) -> Result<Usage, StoreError>;
}

/// The bounds of a tenant's model keys: `tenant/` <= key < `tenant0`
/// ('0' follows '/'); `None` for the default tenant, whose keys have no '/'.
pub(crate) fn tenant_range(tenant: &Tenant) -> Option<(String, String)> {
    (!tenant.is_default()).then(|| {
        (
            format!("{}/", tenant.as_str()),
            format!("{}0", tenant.as_str()),
        )
    })
}

/// The id of a key given whole or as its id.
fn key_id(given: &str) -> &str {
    split_key(given).map_or(given, |(id, _)| id)
}

type KeyRow = (String, String, i64, Option<i64>);

fn to_info((id, tenant, created_at_ms, revoked): KeyRow) -> Result<KeyInfo, StoreError> {
    Ok(KeyInfo {
        id,
        tenant: Tenant::parse(&tenant).map_err(|e| StoreError::Internal(e.to_string()))?,
        created_at_ms,
        revoked: revoked.is_some(),
    })
}

fn db_error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(e.to_string())
        }
        other => StoreError::Internal(other.to_string()),
    }
}

fn to_u64(n: Option<i64>) -> u64 {
    n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
}

/// Writes the same SQL for both databases: `?` placeholders become `$n`
/// for PostgreSQL.
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

/// SQLite takes `?` placeholders as they are.
fn as_is(sql: &str) -> String {
    sql.to_string()
}

const INSERT: &str = "INSERT INTO api_keys (id, tenant, hash, created_at_ms) VALUES (?, ?, ?, ?)";
const SELECT_ROW: &str = "SELECT tenant, hash, revoked_at_ms FROM api_keys WHERE id = ?";
const LIST_ALL: &str =
    "SELECT id, tenant, created_at_ms, revoked_at_ms FROM api_keys ORDER BY created_at_ms, id";
const LIST_TENANT: &str = "SELECT id, tenant, created_at_ms, revoked_at_ms FROM api_keys \
     WHERE tenant = ? ORDER BY created_at_ms, id";
const REVOKE: &str = "UPDATE api_keys SET revoked_at_ms = ? \
     WHERE id = ? AND tenant = ? AND revoked_at_ms IS NULL";
const LIVE: &str = "SELECT COUNT(*) FROM api_keys WHERE revoked_at_ms IS NULL";
// A sharded version's bytes are in its shards (`state` is NULL).
const USAGE_TENANT: &str =
    "SELECT CAST(SUM(n_series) AS BIGINT), CAST(SUM(COALESCE(LENGTH(state), (SELECT SUM(LENGTH(s.state)) FROM shards s \
     WHERE s.model = versions.model AND s.version = versions.version))) AS BIGINT) \
     FROM versions WHERE status <> 'failed' AND model >= ? AND model < ?";
const USAGE_DEFAULT: &str =
    "SELECT CAST(SUM(n_series) AS BIGINT), CAST(SUM(COALESCE(LENGTH(state), (SELECT SUM(LENGTH(s.state)) FROM shards s \
     WHERE s.model = versions.model AND s.version = versions.version))) AS BIGINT) \
     FROM versions WHERE status <> 'failed' AND model NOT LIKE '%/%'";

/// [`KeyStore`] on the embedded SQLite database.
#[derive(Clone)]
pub struct SqliteKeys(pub(crate) SqlitePool);

/// [`KeyStore`] on PostgreSQL (the pool's search_path is the namespace's schema).
#[derive(Clone)]
pub struct PgKeys(pub(crate) PgPool);

macro_rules! key_store {
    ($ty:ty, $sql:expr) => {
        #[async_trait]
        impl KeyStore for $ty {
            async fn insert_key(&self, key: &NewKey) -> Result<(), StoreError> {
                sqlx::query(&$sql(INSERT))
                    .bind(&key.id)
                    .bind(key.tenant.as_str())
                    .bind(&key.hash)
                    .bind(now_ms())
                    .execute(&self.0)
                    .await
                    .map_err(db_error)?;
                Ok(())
            }

            async fn key_row(
                &self,
                id: &str,
            ) -> Result<Option<(String, String, bool)>, StoreError> {
                let row: Option<(String, String, Option<i64>)> = sqlx::query_as(&$sql(SELECT_ROW))
                    .bind(id)
                    .fetch_optional(&self.0)
                    .await
                    .map_err(db_error)?;
                Ok(row.map(|(t, h, r)| (t, h, r.is_some())))
            }

            async fn list_keys(&self, tenant: Option<&Tenant>) -> Result<Vec<KeyInfo>, StoreError> {
                let rows: Vec<KeyRow> = match tenant {
                    None => sqlx::query_as(&$sql(LIST_ALL)).fetch_all(&self.0).await,
                    Some(t) => {
                        sqlx::query_as(&$sql(LIST_TENANT))
                            .bind(t.as_str())
                            .fetch_all(&self.0)
                            .await
                    }
                }
                .map_err(db_error)?;
                rows.into_iter().map(to_info).collect()
            }

            async fn revoke_key(&self, tenant: &Tenant, id: &str) -> Result<bool, StoreError> {
                let done = sqlx::query(&$sql(REVOKE))
                    .bind(now_ms())
                    .bind(key_id(id))
                    .bind(tenant.as_str())
                    .execute(&self.0)
                    .await
                    .map_err(db_error)?;
                Ok(done.rows_affected() > 0)
            }

            async fn has_live_keys(&self) -> Result<bool, StoreError> {
                let n: i64 = sqlx::query_scalar(&$sql(LIVE))
                    .fetch_one(&self.0)
                    .await
                    .map_err(db_error)?;
                Ok(n > 0)
            }

            async fn usage(&self, tenant: &Tenant) -> Result<Usage, StoreError> {
                let row: (Option<i64>, Option<i64>) = match tenant_range(tenant) {
                    Some((lo, hi)) => {
                        sqlx::query_as(&$sql(USAGE_TENANT))
                            .bind(lo)
                            .bind(hi)
                            .fetch_one(&self.0)
                            .await
                    }
                    None => {
                        sqlx::query_as(&$sql(USAGE_DEFAULT))
                            .fetch_one(&self.0)
                            .await
                    }
                }
                .map_err(db_error)?;
                Ok(Usage {
                    series: to_u64(row.0),
                    bytes: to_u64(row.1),
                })
            }
        }
    };
}

key_store!(SqliteKeys, as_is);
key_store!(PgKeys, numbered);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_only_their_hash_is_kept() {
        let t = Tenant::parse("acme").unwrap();
        let (a, b) = (NewKey::generate(&t), NewKey::generate(&t));
        assert_ne!(a.plaintext, b.plaintext);
        assert!(!a.hash.contains(&a.plaintext[21..]));
        let (id, secret) = split_key(&a.plaintext).unwrap();
        assert_eq!(id, a.id);
        assert!(matches(secret, &a.hash));
        assert!(!matches(secret, &b.hash));
        assert_eq!(split_key("hzn_nothex_x"), None);
        assert_eq!(numbered("a = ? AND b = ?"), "a = $1 AND b = $2");
    }
}
