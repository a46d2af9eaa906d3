//! The consent page's lookalike warning, backed by the detection engine's
//! name catalog (protected names: the built-in well-known MCP clients plus
//! configured ones). Wiring only: the judgement is `regwatch-detect`'s.

use regwatch_authz::store::ClientRow;
use regwatch_authz::{BasicAdvisor, ConsentAdvisor};
use regwatch_detect::config::ImpersonationConfig;
use regwatch_detect::detectors::impersonation::{NameCatalog, Ownership, Target};

pub struct LookalikeAdvisor {
    catalog: NameCatalog,
    cfg: ImpersonationConfig,
}

impl LookalikeAdvisor {
    pub fn new(cfg: ImpersonationConfig) -> Self {
        // Protected names only: established clients are the pipeline's job.
        LookalikeAdvisor {
            catalog: NameCatalog::new(&cfg, 0),
            cfg,
        }
    }
}

impl ConsentAdvisor for LookalikeAdvisor {
    fn warnings(&self, client: &ClientRow, verified: bool) -> Vec<String> {
        let mut w = BasicAdvisor.warnings(client, verified);
        let Some(name) = client.metadata.client_name.as_deref() else {
            return w;
        };
        let redirects: Vec<_> = client
            .metadata
            .redirect_uris
            .iter()
            .map(|u| regwatch_detect::host::analyze_redirect(u))
            .collect();
        if let Some(f) = self
            .catalog
            .assess(name, &redirects, &self.cfg, Some(&client.client_id))
        {
            if let Some(Target::Protected {
                name: target,
                owner_domains,
            }) = &f.target
            {
                if f.ownership != Ownership::Owned {
                    w.insert(
                        0,
                        format!(
                            "This client's name looks like \"{target}\", but it does not return to {target}'s own domains ({}). It may be impersonating {target}.",
                            owner_domains.join(", ")
                        ),
                    );
                }
            }
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regwatch_schemas::{ClientMetadata, RegistrationMethod};

    fn client(name: &str, redirect: &str) -> ClientRow {
        ClientRow {
            client_id: "c".into(),
            registration_method: RegistrationMethod::Dcr,
            metadata: ClientMetadata {
                client_name: Some(name.into()),
                redirect_uris: vec![redirect.into()],
                ..Default::default()
            },
            secret_hash: None,
            rat_hash: None,
            status: regwatch_authz::store::ClientStatus::Active,
            created_at: 0,
            updated_at: 0,
            last_seen_at: 0,
            consented_at: None,
            source_ip: None,
            version: 1,
        }
    }

    #[test]
    fn lookalike_names_are_warned_genuine_ones_are_not() {
        let a = LookalikeAdvisor::new(ImpersonationConfig::default());
        let warned = |n: &str, r: &str| {
            a.warnings(&client(n, r), true)
                .iter()
                .any(|w| w.contains("impersonating"))
        };
        assert!(
            warned("ChatGP\u{0422}", "https://chatgpt-login.example.net/cb"),
            "Cyrillic Te"
        );
        assert!(warned("C1aude", "https://claude-ai.example.org/cb"));
        assert!(
            !warned(
                "ChatGPT",
                "https://chatgpt.com/connector_platform_oauth_redirect"
            ),
            "genuine"
        );
        assert!(!warned("Acme Notes", "https://notes.acme.example/cb"));
    }

    #[test]
    fn configured_protected_names_are_warned_too() {
        let cfg = ImpersonationConfig {
            protected: vec![regwatch_detect::config::ProtectedName {
                name: "Acme Notes".into(),
                domains: vec!["acme.example".into()],
                schemes: Vec::new(),
                loopback_allowed: false,
                match_as_word: false,
            }],
            ..Default::default()
        };
        let a = LookalikeAdvisor::new(cfg);
        let warned = |n: &str, r: &str| {
            a.warnings(&client(n, r), true)
                .iter()
                .any(|w| w.contains("impersonating Acme Notes"))
        };
        assert!(warned("Acme N0tes", "https://acme-notes.example.net/cb"));
        assert!(
            !warned("Acme Notes", "https://notes.acme.example/cb"),
            "owned"
        );
    }
}
