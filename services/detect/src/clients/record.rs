//! [`ClientRecord`]: what the detectors keep per client, 64 bytes and no
//! heap. Each field is read by the detectors named in its comment; the
//! engine folds every observation of the client into it.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::hash::hash32;
use crate::host::{ip_prefix, RedirectClass, RedirectInfo};
use crate::state_time::from_state_secs;

/// Lifecycle of a tracked client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientStatus {
    /// Registered and usable.
    Active,
    /// Revoked by an operator or policy.
    Revoked,
    /// Deleted or expired.
    Deleted,
}

/// Bits of a [`ClientRecord`]'s `flags`, each set by one detector.
pub mod flags {
    /// `dormant_client` reported the client (once per client).
    pub const DORMANT_REPORTED: u8 = 1;
    /// `name_impersonation` flagged the client's name: it never becomes an
    /// established name.
    pub const IMPERSONATION: u8 = 2;
    /// The client's name is established (enough consents, never flagged).
    pub const ESTABLISHED: u8 = 4;
}

/// Bits of a [`ClientRecord`]'s `classes`: the redirect classes a client
/// has used.
pub mod redirect_classes {
    /// `https` to a DNS name.
    pub const HTTPS: u8 = 1;
    /// Plain `http` to a non-loopback host.
    pub const HTTP: u8 = 2;
    /// Loopback.
    pub const LOOPBACK: u8 = 4;
    /// Private address.
    pub const PRIVATE: u8 = 8;
    /// Custom scheme.
    pub const CUSTOM: u8 = 16;
}

/// The [`redirect_classes`] bit of one redirect class.
pub fn class_flag(c: RedirectClass) -> u8 {
    match c {
        RedirectClass::Https => redirect_classes::HTTPS,
        RedirectClass::Http => redirect_classes::HTTP,
        RedirectClass::Loopback => redirect_classes::LOOPBACK,
        RedirectClass::PrivateIp => redirect_classes::PRIVATE,
        RedirectClass::CustomScheme => redirect_classes::CUSTOM,
        RedirectClass::Invalid => 0,
    }
}

/// What the detectors keep per client: 64 bytes, no heap (see
/// [`ClientTable`](crate::clients::ClientTable) for the rest of the
/// per-client cost). Times are on the state's time scale
/// ([`crate::state_time`]).
#[derive(Debug, Clone)]
pub struct ClientRecord {
    /// Hash of the folded name (`name_impersonation`: a name is judged
    /// again only when it changes).
    pub(crate) name_key: u64,
    /// Scopes registered, as interned bits (`scope_escalation`).
    pub(crate) requested: u64,
    /// Scopes consented to so far, as interned bits (`scope_escalation`).
    pub(crate) consented: u64,
    /// First seen (`dormant_client`: the dormancy deadline counts from it).
    pub(crate) first_seen: u32,
    pub(crate) last_seen: u32,
    /// Hashes of the latest identity hosts, oldest first (`redirect_drift`).
    pub(crate) hosts: [u32; 3],
    /// Hashes of the latest registrable domains (`redirect_drift`).
    pub(crate) domains: [u32; 2],
    /// Hash of the source /24 or /64 (`dormant_client` clusters by it).
    pub(crate) src_prefix: u32,
    /// Consents so far (`dormant_client`, `scope_escalation`, and the
    /// threshold of an established name).
    pub(crate) consents: u16,
    pub(crate) tokens: u16,
    /// [`redirect_classes`] used so far (`redirect_drift`).
    pub(crate) classes: u8,
    pub(crate) status: ClientStatus,
    /// [`flags`].
    pub(crate) flags: u8,
    /// The client table's bookkeeping bits (the struct's one spare byte).
    pub(crate) meta: u8,
}

impl ClientRecord {
    pub(crate) fn new(t: u32) -> Self {
        ClientRecord {
            name_key: 0,
            requested: 0,
            consented: 0,
            first_seen: t,
            last_seen: t,
            hosts: [0; 3],
            domains: [0; 2],
            src_prefix: 0,
            consents: 0,
            tokens: 0,
            classes: 0,
            status: ClientStatus::Active,
            flags: 0,
            meta: 0,
        }
    }

    fn remember<const N: usize>(set: &mut [u32; N], h: u32) {
        if h == 0 || set.contains(&h) {
            return;
        }
        // Oldest out: shift left, append.
        set.rotate_left(1);
        set[N - 1] = h;
    }

    /// Folds in a registration or metadata update seen at `t`: the name
    /// hash, the scopes asked for, the source network and the redirects.
    pub(crate) fn absorb_registration(
        &mut self,
        t: u32,
        name_key: u64,
        requested: u64,
        source_ip: Option<IpAddr>,
        redirects: &[RedirectInfo],
    ) {
        self.last_seen = self.last_seen.max(t);
        self.name_key = name_key;
        self.requested = requested;
        if let Some(ip) = source_ip {
            self.src_prefix = hash32(&ip_prefix(ip));
        }
        for info in redirects {
            self.classes |= class_flag(info.class);
            if let Some(h) = info.identity_host() {
                Self::remember(&mut self.hosts, hash32(h));
            }
            if let Some(d) = &info.registrable {
                Self::remember(&mut self.domains, hash32(d));
            }
        }
    }

    /// Folds in a consent to the `granted` scope bits at `t`.
    pub(crate) fn absorb_consent(&mut self, t: u32, granted: u64) {
        self.consented |= granted;
        self.consents = self.consents.saturating_add(1);
        self.touch(t);
    }

    /// Folds in a token issued or refreshed at `t`.
    pub(crate) fn absorb_token(&mut self, t: u32) {
        self.tokens = self.tokens.saturating_add(1);
        self.touch(t);
    }

    /// Seen at `t`.
    pub(crate) fn touch(&mut self, t: u32) {
        self.last_seen = self.last_seen.max(t);
    }

    /// Lifecycle status.
    pub fn status(&self) -> ClientStatus {
        self.status
    }

    /// Consents granted so far.
    pub fn consents(&self) -> u16 {
        self.consents
    }

    /// Tokens issued or refreshed so far (saturating).
    pub fn tokens(&self) -> u16 {
        self.tokens
    }

    /// First and last time seen.
    pub fn seen(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        (
            from_state_secs(self.first_seen),
            from_state_secs(self.last_seen),
        )
    }
}
