//! Name resolution with the address policy enforced at connect time.
//!
//! reqwest asks [`GuardedResolver`] for the addresses of every host name it
//! connects to, and connects only to what it returns. Checking there, rather
//! than resolving once up front, means the addresses checked are the
//! addresses used: a DNS answer that changes between a pre-check and the
//! connection (rebinding) cannot slip an internal address in. IP-literal
//! hosts never reach a resolver; `validate_client_id_url_with` checks them.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::ip::is_forbidden_ip;

/// The future an [`AddrResolver`] returns.
pub type ResolveFuture = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// Turns a host name into IP addresses. The production implementation is
/// [`SystemResolver`]; tests inject one mapping names to chosen addresses.
///
/// Implementations only resolve. The address policy is applied on top by
/// the fetcher, so a resolver cannot weaken it.
pub trait AddrResolver: Send + Sync + 'static {
    /// Resolve `host` (a domain name, never an IP literal).
    fn lookup(&self, host: &str) -> ResolveFuture;
}

/// The operating system's resolver (`getaddrinfo` via tokio).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl AddrResolver for SystemResolver {
    fn lookup(&self, host: &str) -> ResolveFuture {
        let host = host.to_owned();
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|sa| sa.ip()).collect())
        })
    }
}

/// Raised through reqwest when a name resolved to a forbidden address; the
/// fetcher finds it in the error's source chain.
#[derive(Debug)]
pub(crate) struct ForbiddenResolution {
    pub(crate) addr: IpAddr,
}

impl fmt::Display for ForbiddenResolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "resolved to forbidden address {}", self.addr)
    }
}

impl std::error::Error for ForbiddenResolution {}

/// Raised through reqwest when resolution failed or found nothing.
#[derive(Debug)]
pub(crate) struct ResolutionFailed {
    pub(crate) host: String,
    pub(crate) message: String,
}

impl fmt::Display for ResolutionFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not resolve {}: {}", self.host, self.message)
    }
}

impl std::error::Error for ResolutionFailed {}

/// Resolve `host` and apply the address policy. If *any* address is
/// forbidden the whole answer is refused: a name that mixes public and
/// internal addresses is not one we want to talk to.
pub(crate) async fn resolve_checked(
    resolver: &dyn AddrResolver,
    host: &str,
    allow_loopback: bool,
) -> Result<Vec<IpAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let addrs = resolver.lookup(host).await.map_err(|e| ResolutionFailed {
        host: host.to_owned(),
        message: e.to_string(),
    })?;
    if addrs.is_empty() {
        return Err(Box::new(ResolutionFailed {
            host: host.to_owned(),
            message: "no addresses".into(),
        }));
    }
    if let Some(&addr) = addrs
        .iter()
        .find(|ip| is_forbidden_ip(**ip, allow_loopback))
    {
        tracing::warn!(%host, %addr, "cimd host resolved to a forbidden address");
        return Err(Box::new(ForbiddenResolution { addr }));
    }
    Ok(addrs)
}

/// The [`Resolve`] given to reqwest: an [`AddrResolver`] plus the policy.
pub(crate) struct GuardedResolver {
    pub(crate) inner: Arc<dyn AddrResolver>,
    pub(crate) allow_loopback: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let inner = Arc::clone(&self.inner);
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let addrs = resolve_checked(inner.as_ref(), name.as_str(), allow_loopback).await?;
            // Port 0 is replaced by the URL's port (or the scheme default).
            let addrs: Addrs = Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Vec<IpAddr>);

    impl AddrResolver for Fixed {
        fn lookup(&self, _host: &str) -> ResolveFuture {
            let addrs = self.0.clone();
            Box::pin(async move { Ok(addrs) })
        }
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter()
            .map(|s| s.parse().expect("valid address"))
            .collect()
    }

    async fn outcome(list: &[&str], allow_loopback: bool) -> Result<Vec<IpAddr>, String> {
        resolve_checked(&Fixed(ips(list)), "h.example", allow_loopback)
            .await
            .map_err(|e| {
                if let Some(f) = e.downcast_ref::<ForbiddenResolution>() {
                    format!("forbidden {}", f.addr)
                } else {
                    "dns".to_owned()
                }
            })
    }

    #[tokio::test]
    async fn policy_applies_to_every_resolved_address() {
        assert_eq!(
            outcome(&["8.8.8.8", "2606:4700::1111"], false).await,
            Ok(ips(&["8.8.8.8", "2606:4700::1111"]))
        );
        assert_eq!(
            outcome(&["8.8.8.8", "10.0.0.1"], false).await,
            Err("forbidden 10.0.0.1".into())
        );
        assert_eq!(
            outcome(&["127.0.0.1"], false).await,
            Err("forbidden 127.0.0.1".into())
        );
        assert_eq!(outcome(&["127.0.0.1"], true).await, Ok(ips(&["127.0.0.1"])));
        assert_eq!(
            outcome(&["127.0.0.1", "169.254.169.254"], true).await,
            Err("forbidden 169.254.169.254".into())
        );
        assert_eq!(outcome(&[], false).await, Err("dns".into()));
    }

    #[tokio::test]
    async fn system_resolver_resolves_localhost_to_loopback() {
        let addrs = SystemResolver
            .lookup("localhost")
            .await
            .expect("localhost resolves on any test machine");
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|ip| ip.is_loopback()), "{addrs:?}");
    }
}
