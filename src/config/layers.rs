//! The layers under [`super::Settings`]: the environment as a figment provider, the value types
//! that are checked as they are read, and errors that name the setting at fault.
//!
//! Every environment value enters as text (figment's own `Env` would read
//! `ONSHI_PKCS11_TOKEN_LABEL=1234` as a number and a key of decimal digits as a float); the typed
//! fields read numbers from it when the settings are extracted.

use std::fmt;
use std::time::Duration;

use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};
use serde::{Deserialize, Deserializer};

/// The metadata name of the environment layer.
pub const ENVIRONMENT: &str = "environment";

/// Every setting the environment may give, by its path in the settings, with its variables (the
/// first one set wins).
pub const VARIABLES: &[(&str, &[&str])] = &[
    ("listen", &["ONSHI_LISTEN"]),
    ("database_url", &["ONSHI_DATABASE_URL", "DATABASE_URL"]),
    ("pool_size", &["ONSHI_POOL_SIZE"]),
    ("link_key_file", &["ONSHI_LINK_KEY_FILE"]),
    ("link_key", &["ONSHI_LINK_KEY"]),
    ("log_format", &["ONSHI_LOG_FORMAT"]),
    ("auth_cache_seconds", &["ONSHI_AUTH_CACHE_SECONDS"]),
    ("audit_batch_max", &["ONSHI_AUDIT_BATCH_MAX"]),
    ("audit_writers", &["ONSHI_AUDIT_WRITERS"]),
    ("check_lookups", &["ONSHI_CHECK_LOOKUPS"]),
    ("rate_per_second", &["ONSHI_RATE_PER_SECOND"]),
    ("rate_burst", &["ONSHI_RATE_BURST"]),
    ("daily_quota", &["ONSHI_DAILY_QUOTA"]),
    ("enumeration_misses", &["ONSHI_ENUMERATION_MISSES"]),
    (
        "enumeration_cooloff_seconds",
        &["ONSHI_ENUMERATION_COOLOFF_SECONDS"],
    ),
    ("trusted_proxies", &["ONSHI_TRUSTED_PROXIES"]),
    ("metrics_allow", &["ONSHI_METRICS_ALLOW"]),
    ("upload_concurrency", &["ONSHI_UPLOAD_CONCURRENCY"]),
    ("upload_per_party", &["ONSHI_UPLOAD_PER_PARTY"]),
    ("upload_wait_seconds", &["ONSHI_UPLOAD_WAIT_SECONDS"]),
    (
        "upload_deadline_seconds",
        &["ONSHI_UPLOAD_DEADLINE_SECONDS"],
    ),
    ("upload_max_bytes", &["ONSHI_UPLOAD_MAX_BYTES"]),
    ("upload_idle_seconds", &["ONSHI_UPLOAD_IDLE_SECONDS"]),
    ("jpki_trust_dir", &["ONSHI_JPKI_TRUST_DIR"]),
    ("jpki_crl_dir", &["ONSHI_JPKI_CRL_DIR"]),
    ("trust_reload_seconds", &["ONSHI_TRUST_RELOAD_SECONDS"]),
    ("challenge_seconds", &["ONSHI_CHALLENGE_SECONDS"]),
    ("crl_grace_seconds", &["ONSHI_CRL_GRACE_SECONDS"]),
    ("card_surface_trust_dir", &["ONSHI_CARD_SURFACE_TRUST_DIR"]),
    ("public_origin", &["ONSHI_PUBLIC_ORIGIN"]),
    ("migration_database_url", &["ONSHI_MIGRATION_DATABASE_URL"]),
    ("link_key_pkcs11_label", &["ONSHI_LINK_KEY_PKCS11_LABEL"]),
    ("health_id.key_file", &["ONSHI_HEALTH_ID_KEY_FILE"]),
    ("health_id.key", &["ONSHI_HEALTH_ID_KEY"]),
    ("health_id.pkcs11_module", &["ONSHI_PKCS11_MODULE"]),
    (
        "health_id.pkcs11_token_label",
        &["ONSHI_PKCS11_TOKEN_LABEL"],
    ),
    ("health_id.pkcs11_pin_file", &["ONSHI_PKCS11_PIN_FILE"]),
    ("health_id.pkcs11_key_label", &["ONSHI_PKCS11_KEY_LABEL"]),
    ("tls.cert_file", &["ONSHI_TLS_CERT_FILE"]),
    ("tls.key_file", &["ONSHI_TLS_KEY_FILE"]),
    ("tls.client_ca_file", &["ONSHI_TLS_CLIENT_CA_FILE"]),
    ("audit.key_file", &["ONSHI_AUDIT_KEY_FILE"]),
    ("audit.pkcs11_key_label", &["ONSHI_AUDIT_PKCS11_KEY_LABEL"]),
    (
        "audit.checkpoint_pkcs11_key_label",
        &["ONSHI_AUDIT_CHECKPOINT_PKCS11_KEY_LABEL"],
    ),
    ("audit.witness_dir", &["ONSHI_AUDIT_WITNESS_DIR"]),
    (
        "audit.checkpoint_seconds",
        &["ONSHI_AUDIT_CHECKPOINT_SECONDS"],
    ),
    ("proof.key_file", &["ONSHI_PROOF_KEY_FILE"]),
    ("proof.pkcs11_key_label", &["ONSHI_PROOF_PKCS11_KEY_LABEL"]),
    ("proof.pkcs11_sessions", &["ONSHI_PROOF_PKCS11_SESSIONS"]),
    ("bulk.worker", &["ONSHI_BULK_WORKER"]),
    ("bulk.chunk_size", &["ONSHI_BULK_CHUNK_SIZE"]),
    ("bulk.poll_millis", &["ONSHI_BULK_POLL_MILLIS"]),
    ("bulk.retention_days", &["ONSHI_BULK_RETENTION_DAYS"]),
];

/// The secrets among them: taken from the environment only (a config file is not kept as a key
/// file is), and removed from the process environment once read.
pub const SECRETS: &[&str] = &["link_key", "health_id.key"];

/// The settings whose variable is a comma-separated list.
const LISTS: &[&str] = &["trusted_proxies", "metrics_allow"];

/// The variables of a setting, as a message names them.
pub fn variables_of(setting: &str) -> Option<String> {
    VARIABLES
        .iter()
        .find(|(path, _)| *path == setting)
        .map(|(_, names)| names.join(" or "))
}

/// The environment layer: the variables of [`VARIABLES`] that are set, read through `env`.
pub struct Environment<F>(pub F);

impl<F: Fn(&str) -> Option<String>> Provider for Environment<F> {
    fn metadata(&self) -> Metadata {
        Metadata::named(ENVIRONMENT).interpolater(|_: &Profile, keys: &[&str]| {
            variables_of(&keys.join(".")).unwrap_or_else(|| keys.join("."))
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut root = Dict::new();
        for (path, names) in VARIABLES {
            let Some(text) = names.iter().find_map(|name| (self.0)(name)) else {
                continue;
            };
            let value = if LISTS.contains(path) {
                Value::from(
                    text.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect::<Vec<_>>(),
                )
            } else {
                Value::from(text)
            };
            let mut dict = &mut root;
            let mut parts = path.split('.').peekable();
            while let Some(part) = parts.next() {
                if parts.peek().is_none() {
                    dict.insert(part.to_owned(), value);
                    break;
                }
                let inner = dict
                    .entry(part.to_owned())
                    .or_insert_with(|| Value::from(Dict::new()));
                dict = match inner {
                    Value::Dict(_, inner) => inner,
                    _ => unreachable!("the table nests only dictionaries"),
                };
            }
        }
        Ok(Profile::Default.collect(root))
    }
}

/// A figment error as one line per setting at fault: its path, where it came from (the variable
/// or the file) and why.
pub fn refused(error: figment::Error) -> anyhow::Error {
    let lines: Vec<String> = error
        .into_iter()
        .map(|e| {
            let setting = e.path.join(".");
            let from = match &e.metadata {
                Some(md) if md.name == ENVIRONMENT => variables_of(&setting),
                Some(md) => md.source.as_ref().map(|s| format!("in {s}")),
                None => None,
            };
            match (setting.is_empty(), from) {
                (true, Some(from)) => format!("{} ({from})", e.kind),
                (true, None) => e.kind.to_string(),
                (false, Some(from)) => format!("{setting} ({from}): {}", e.kind),
                (false, None) => format!("{setting}: {}", e.kind),
            }
        })
        .collect();
    anyhow::anyhow!("{}", lines.join("; "))
}

/// A `*_seconds` setting: whole seconds.
///
/// # Errors
/// Not a whole number of seconds.
pub fn seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_secs)
}

/// Where the server listens: `host:port`, the host a name or an address (`[..]` for IPv6),
/// kept as written so that the derived public origin says what the operator wrote.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ListenAddress {
    host: String,
    port: u16,
}

impl ListenAddress {
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl std::str::FromStr for ListenAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let refused = || format!("must be host:port (such as 127.0.0.1:8080), not {text:?}");
        let (host, port) = text.rsplit_once(':').ok_or_else(refused)?;
        let port = port.parse::<u16>().map_err(|_| refused())?;
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let well_formed = !bare.is_empty()
            && if bare.len() == host.len() {
                // A name or an IPv4 address: no colon (an IPv6 address needs its brackets).
                !bare.contains(':') && !bare.contains(char::is_whitespace)
            } else {
                bare.parse::<std::net::Ipv6Addr>().is_ok()
            };
        if !well_formed {
            return Err(refused());
        }
        Ok(ListenAddress {
            host: host.to_owned(),
            port,
        })
    }
}

impl TryFrom<String> for ListenAddress {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl fmt::Debug for ListenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_are_host_and_port() {
        for good in [
            "127.0.0.1:0",
            "localhost:8080",
            "[::1]:443",
            "0.0.0.0:65535",
        ] {
            let address: ListenAddress = good.parse().unwrap();
            assert_eq!(address.to_string(), good);
        }
        for bad in [
            "8080",
            ":8080",
            "host:",
            "host:65536",
            "::1:80",
            "[nope]:80",
            "a b:1",
        ] {
            assert!(bad.parse::<ListenAddress>().is_err(), "{bad}");
        }
    }

    #[test]
    fn every_setting_has_its_variables_once() {
        let mut names: Vec<&str> = VARIABLES
            .iter()
            .flat_map(|(_, n)| n.iter().copied())
            .collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "a variable is listed twice");
        for secret in SECRETS {
            assert!(variables_of(secret).is_some(), "{secret}");
        }
    }
}
