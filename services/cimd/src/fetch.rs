//! The fetcher: one hardened HTTP GET, the cap on the body, the cache.

use std::error::Error as StdError;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use reqwest::header::{HeaderMap, ACCEPT, AGE, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{redirect, StatusCode};
use url::{Host, Url};

use crate::cache::{ttl_from_headers, DocumentCache};
use crate::client_id::validate_client_id_url_with;
use crate::config::CimdConfig;
use crate::document::{parse_document, CimdDocument};
use crate::error::{truncate, CimdError};
use crate::ip::is_forbidden_ip;
use crate::resolve::{
    AddrResolver, ForbiddenResolution, GuardedResolver, ResolutionFailed, SystemResolver,
};

const USER_AGENT: &str = concat!("regwatch-cimd/", env!("CARGO_PKG_VERSION"));

/// Fetches, validates and caches Client ID Metadata Documents.
///
/// Cheap to share: wrap it in an `Arc` and call [`CimdFetcher::fetch`] from
/// any task.
pub struct CimdFetcher {
    config: CimdConfig,
    client: reqwest::Client,
    cache: Mutex<DocumentCache>,
}

impl std::fmt::Debug for CimdFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CimdFetcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl CimdFetcher {
    /// A fetcher using the system resolver.
    pub fn new(config: CimdConfig) -> Result<Self, CimdError> {
        Self::with_resolver(config, Arc::new(SystemResolver))
    }

    /// A fetcher using `resolver` for host names. The address policy is
    /// applied to whatever it returns, so tests can point names at chosen
    /// addresses without weakening the checks.
    pub fn with_resolver(
        config: CimdConfig,
        resolver: Arc<dyn AddrResolver>,
    ) -> Result<Self, CimdError> {
        config.validate()?;
        let guarded = GuardedResolver {
            inner: resolver,
            allow_loopback: config.allow_loopback_dev,
        };
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(guarded))
            // A 3xx is an error; following it could lead anywhere.
            .redirect(redirect::Policy::none())
            // A proxy would resolve the name itself, bypassing the guard.
            .no_proxy()
            // Production is https only; the dev flag permits http for
            // loopback targets (checked per URL as well).
            .https_only(!config.allow_loopback_dev)
            .retry(reqwest::retry::never())
            .referer(false)
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .pool_max_idle_per_host(0)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| CimdError::Config {
                reason: format!("http client: {e}"),
            })?;
        Ok(Self {
            cache: Mutex::new(DocumentCache::new(config.cache_capacity)),
            config,
            client,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &CimdConfig {
        &self.config
    }

    /// Fetch and validate the document for a URL-formatted `client_id`.
    ///
    /// Served from the cache when a fresh copy is there. Otherwise: validate
    /// the URL, GET it with the address policy enforced at connect time,
    /// require 200 and a JSON content type, read at most `max_bytes`,
    /// validate the document, then cache it. Nothing that fails is cached.
    pub async fn fetch(&self, client_id: &str) -> Result<Arc<CimdDocument>, CimdError> {
        if let Some(doc) = self.lock_cache().get(client_id, Instant::now()) {
            return Ok(doc);
        }
        let result = self.fetch_uncached(client_id).await;
        match &result {
            Ok(_) => tracing::debug!(%client_id, "cimd document fetched"),
            Err(e) => tracing::info!(
                client_id = %truncate(client_id, 256),
                reason = e.reason_code(),
                error = %e,
                "cimd document refused"
            ),
        }
        result
    }

    async fn fetch_uncached(&self, client_id: &str) -> Result<Arc<CimdDocument>, CimdError> {
        let url = validate_client_id_url_with(client_id, self.config.allow_loopback_dev)?;
        ensure_literal_host_allowed(&url, self.config.allow_loopback_dev)?;

        // Belt and braces: reqwest's own total timeout covers the body too,
        // this one also covers anything outside reqwest.
        let (headers, body) = tokio::time::timeout(self.config.timeout, self.get(url))
            .await
            .map_err(|_| CimdError::Timeout)??;

        let document = Arc::new(parse_document(&body, client_id)?);

        let cache_control: Vec<&str> = headers
            .get_all(CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let age = headers.get(AGE).and_then(|v| v.to_str().ok());
        let ttl = ttl_from_headers(
            &cache_control,
            age,
            self.config.default_ttl,
            self.config.max_ttl,
        );
        self.lock_cache()
            .insert(client_id, Arc::clone(&document), ttl, Instant::now());
        Ok(document)
    }

    /// One GET; returns the headers and the capped body of a 200 JSON reply.
    async fn get(&self, url: Url) -> Result<(HeaderMap, Vec<u8>), CimdError> {
        let mut response = self
            .client
            .get(url)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(classify)?;

        let status = response.status();
        if status.is_redirection() {
            return Err(CimdError::Redirect {
                status: status.as_u16(),
            });
        }
        if status != StatusCode::OK {
            return Err(CimdError::HttpStatus {
                status: status.as_u16(),
            });
        }

        let headers = response.headers().clone();
        check_content_type(&headers)?;

        let limit = self.config.max_bytes;
        // A declared length over the cap is refused without reading; a
        // declared length under it proves nothing, so the loop below
        // counts what actually arrives.
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(CimdError::TooLarge { limit });
        }

        let mut body = Vec::with_capacity(limit.min(1024));
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > limit {
                return Err(CimdError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok((headers, body))
    }

    fn lock_cache(&self) -> MutexGuard<'_, DocumentCache> {
        // A panic while holding the lock cannot leave the map half-updated
        // in a way that matters (worst case: a missing entry), so recover.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// reqwest never passes IP-literal hosts to the resolver, so they are
/// checked here (again; URL validation already did) before any request.
fn ensure_literal_host_allowed(url: &Url, allow_loopback: bool) -> Result<(), CimdError> {
    let addr = match url.host() {
        Some(Host::Ipv4(v4)) => v4.into(),
        Some(Host::Ipv6(v6)) => v6.into(),
        _ => return Ok(()),
    };
    if is_forbidden_ip(addr, allow_loopback) {
        return Err(CimdError::ForbiddenAddress { addr });
    }
    Ok(())
}

/// `application/json` or any `application/*+json`, parameters ignored.
fn check_content_type(headers: &HeaderMap) -> Result<(), CimdError> {
    let raw = headers.get(CONTENT_TYPE).map(|v| v.to_str().unwrap_or(""));
    let is_json = raw.is_some_and(is_json_media_type);
    if is_json {
        Ok(())
    } else {
        Err(CimdError::NotJson {
            content_type: raw.map(|s| truncate(s, 100)),
        })
    }
}

pub(crate) fn is_json_media_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.split_once('/') {
        Some(("application", subtype)) => subtype == "json" || subtype.ends_with("+json"),
        _ => false,
    }
}

/// Map a reqwest error to a refusal reason, looking through its source
/// chain for the guard's own errors.
fn classify(err: reqwest::Error) -> CimdError {
    let mut source: Option<&(dyn StdError + 'static)> = err.source();
    while let Some(e) = source {
        if let Some(forbidden) = e.downcast_ref::<ForbiddenResolution>() {
            return CimdError::ForbiddenAddress {
                addr: forbidden.addr,
            };
        }
        if let Some(failed) = e.downcast_ref::<ResolutionFailed>() {
            return CimdError::Dns {
                host: failed.host.clone(),
                message: failed.message.clone(),
            };
        }
        source = e.source();
    }
    if err.is_timeout() {
        CimdError::Timeout
    } else if err.is_connect() {
        CimdError::Connect {
            message: error_chain(&err),
        }
    } else {
        CimdError::Http {
            message: error_chain(&err),
        }
    }
}

fn error_chain(err: &dyn StdError) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    truncate(&out, 512)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        for (value, expected) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/vnd.example+json", true),
            ("application/jrd+json;q=1", true),
            ("text/json", false),
            ("text/html", false),
            ("application/jsonp", false),
            ("application/json-seq", false),
            ("application/x-www-form-urlencoded", false),
            ("", false),
            ("json", false),
        ] {
            assert_eq!(is_json_media_type(value), expected, "{value}");
        }
    }

    #[test]
    fn literal_hosts_are_checked_before_any_request() {
        for (url, dev, ok) in [
            ("https://10.0.0.1/c", true, false),
            ("https://[::1]/c", false, false),
            ("http://127.0.0.1:1/c", true, true),
            ("https://example.com/c", false, true),
        ] {
            let parsed = Url::parse(url).expect("valid url");
            assert_eq!(
                ensure_literal_host_allowed(&parsed, dev).is_ok(),
                ok,
                "{url}"
            );
        }
    }

    #[test]
    fn new_rejects_bad_config() {
        let err = CimdFetcher::new(CimdConfig {
            max_bytes: 10_000,
            ..CimdConfig::default()
        })
        .expect_err("max_bytes above the ceiling");
        assert_eq!(err.reason_code(), "invalid_config");
        assert_eq!(err.oauth_error(), "server_error");
    }
}
