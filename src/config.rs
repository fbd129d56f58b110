//! Typed, layered configuration: defaults, then an optional TOML file, then the environment.
//!
//! | setting | env | default |
//! |---|---|---|
//! | `listen` | `ONSHI_LISTEN` | `127.0.0.1:8080` |
//! | `database_url` | `DATABASE_URL` or `ONSHI_DATABASE_URL` | `postgres://postgres@127.0.0.1:5432/onshi` |
//! | `pool_size` | `ONSHI_POOL_SIZE` | 16 |
//! | `link_key_file` | `ONSHI_LINK_KEY_FILE` | none; `ONSHI_LINK_KEY` (hex) may be used instead |
//! | `link_key` | `ONSHI_LINK_KEY` (hex; environment only, removed once read) | none |
//! | `log_format` | `ONSHI_LOG_FORMAT` (`text` or `json`) | `text` |
//! | `auth_cache_seconds` | `ONSHI_AUTH_CACHE_SECONDS` | 30 |
//! | `audit_batch_max` | `ONSHI_AUDIT_BATCH_MAX` | 4096 |
//! | `audit_writers` | `ONSHI_AUDIT_WRITERS` (each its own session and chain lane) | 4 |
//! | `check_lookups` | `ONSHI_CHECK_LOOKUPS` (single checks' look-ups at once; checks arriving meanwhile go together in the next) | 2 |
//! | `rate_per_second` | `ONSHI_RATE_PER_SECOND` (queries per party, shared by every server; 0 = no limit) | 50 |
//! | `rate_burst` | `ONSHI_RATE_BURST` | 100 |
//! | `daily_quota` | `ONSHI_DAILY_QUOTA` (queries per party and Japanese day, every server; 0 = none) | 0 |
//! | `enumeration_misses` | `ONSHI_ENUMERATION_MISSES` (distinct not-found keys a minute that flag a party; 0 = off) | 50 |
//! | `enumeration_cooloff_seconds` | `ONSHI_ENUMERATION_COOLOFF_SECONDS` (`Retry-After` of a flagged party, which stays refused until cleared) | 300 |
//! | `trusted_proxies` | `ONSHI_TRUSTED_PROXIES` (comma-separated addresses or CIDR blocks whose `X-Forwarded-For` is believed) | none |
//! | `metrics_allow` | `ONSHI_METRICS_ALLOW` (comma-separated addresses or CIDR blocks that may read `GET /metrics`) | `127.0.0.1/32, ::1/128` |
//! | `upload_concurrency` | `ONSHI_UPLOAD_CONCURRENCY` (enrolment uploads applied at once, all insurers) | 4 |
//! | `upload_per_party` | `ONSHI_UPLOAD_PER_PARTY` (at once per insurer) | 1 |
//! | `upload_wait_seconds` | `ONSHI_UPLOAD_WAIT_SECONDS` (longest wait for an upload's turn; then 503) | 30 |
//! | `upload_deadline_seconds` | `ONSHI_UPLOAD_DEADLINE_SECONDS` (whole upload, body and apply; then 408) | 3600 |
//! | `upload_max_bytes` | `ONSHI_UPLOAD_MAX_BYTES` (413 beyond) | 4294967296 |
//! | `jpki_trust_dir` | `ONSHI_JPKI_TRUST_DIR` | none: the card path answers 503 `card.not_configured` |
//! | `jpki_crl_dir` | `ONSHI_JPKI_CRL_DIR` (every CA of the trust dir needs a current, verified CRL here) | none: every card check answers 503 `card.revocation_unavailable` |
//! | `trust_reload_seconds` | `ONSHI_TRUST_RELOAD_SECONDS` | 300 |
//! | `challenge_seconds` | `ONSHI_CHALLENGE_SECONDS` | 120 |
//! | `upload_idle_seconds` | `ONSHI_UPLOAD_IDLE_SECONDS` (longest pause inside an enrolment upload) | 60 |
//! | `health_id.key_file` | `ONSHI_HEALTH_ID_KEY_FILE` (hex master key, development) | none; `ONSHI_HEALTH_ID_KEY` (hex) may be used instead |
//! | `health_id.key` | `ONSHI_HEALTH_ID_KEY` (hex; environment only, removed once read) | none |
//! | `health_id.pkcs11_module` | `ONSHI_PKCS11_MODULE` (when set, the token is used) | none |
//! | `health_id.pkcs11_token_label` | `ONSHI_PKCS11_TOKEN_LABEL` | none |
//! | `health_id.pkcs11_pin_file` | `ONSHI_PKCS11_PIN_FILE` | none |
//! | `health_id.pkcs11_key_label` | `ONSHI_PKCS11_KEY_LABEL` | `onshi-health-id` |
//! | `tls.cert_file` | `ONSHI_TLS_CERT_FILE` (server certificate chain, PEM) | none: plain HTTP |
//! | `tls.key_file` | `ONSHI_TLS_KEY_FILE` (server private key, PEM; set with `cert_file`) | none |
//! | `crl_grace_seconds` | `ONSHI_CRL_GRACE_SECONDS` (how long a CRL stays usable past its nextUpdate) | 0 |
//! | `card_surface_trust_dir` | `ONSHI_CARD_SURFACE_TRUST_DIR` (券面事項 trust anchors: the issuer of the card's input-assistance data) | none: linking answers 503 `card.not_configured` |
//! | `public_origin` | `ONSHI_PUBLIC_ORIGIN` (the URL readers use; signed into every card proof) | derived: `http(s)://<listen host>:<bound port>` |
//! | `tls.client_ca_file` | `ONSHI_TLS_CLIENT_CA_FILE` (CAs, PEM; every client must present a certificate chained to one) | none: no client certificates asked for |
//! | `link_key_pkcs11_label` | `ONSHI_LINK_KEY_PKCS11_LABEL` (the link key in the PKCS#11 token of `health_id`; when set, no key file is read) | none |
//! | `migration_database_url` | `ONSHI_MIGRATION_DATABASE_URL` (the schema owner: migrations run as it; `database_url` is then the application role `onshi_app`) | none: migrations use `database_url` |
//! | `audit.key_file` | `ONSHI_AUDIT_KEY_FILE` (hex, at least 32 bytes, mode 600; development) | none: the PKCS#11 token of `health_id` |
//! | `audit.pkcs11_key_label` | `ONSHI_AUDIT_PKCS11_KEY_LABEL` | `onshi-audit` |
//! | `audit.checkpoint_pkcs11_key_label` | `ONSHI_AUDIT_CHECKPOINT_PKCS11_KEY_LABEL` (Ed25519 pair signing checkpoints) | `onshi-audit-checkpoint` |
//! | `audit.witness_dir` | `ONSHI_AUDIT_WITNESS_DIR` (the append-only checkpoint directory) | none: `serve` refuses to start |
//! | `audit.checkpoint_seconds` | `ONSHI_AUDIT_CHECKPOINT_SECONDS` | 60 |
//! | `proof.key_file` | `ONSHI_PROOF_KEY_FILE` (hex, at least 32 bytes, mode 600; the proofs' Ed25519 pair derives from it; development) | none: the pair `proof.pkcs11_key_label` in the PKCS#11 token of `health_id` |
//! | `proof.pkcs11_key_label` | `ONSHI_PROOF_PKCS11_KEY_LABEL` (Ed25519 pair signing the proofs of check, `CKM_EDDSA`) | `onshi-proof` |
//! | `proof.pkcs11_sessions` | `ONSHI_PROOF_PKCS11_SESSIONS` (token sessions signing proofs in parallel) | 2 |
//! | `bulk.worker` | `ONSHI_BULK_WORKER` (whether this server works on bulk inquiries: [`crate::bulk::BulkSettings`]) | `true` |
//! | `bulk.chunk_size` | `ONSHI_BULK_CHUNK_SIZE` (queries answered and recorded together, 1 to 10,000) | 500 |
//! | `bulk.poll_millis` | `ONSHI_BULK_POLL_MILLIS` (how often an idle worker looks for a job) | 1000 |
//! | `bulk.retention_days` | `ONSHI_BULK_RETENTION_DAYS` (a bulk inquiry is deleted this long after receipt) | 7 |
//!
//! The file is `ONSHI_CONFIG` if set, else `onshi.toml` in the working directory if present;
//! the environment names are those of the table ([`layers::VARIABLES`]). Every value is checked
//! as it is read: durations, counts that cannot be zero, the listen address and the trusted
//! proxies have types of their own, and a value out of its range is refused at start with the
//! setting's name and why, never clamped. The secrets (`ONSHI_LINK_KEY`, `ONSHI_HEALTH_ID_KEY`)
//! come through the same layers, from the environment only, are held as [`SecretString`]s that
//! `Debug` does not show, and are removed from the process environment once read; `Debug` of
//! the database URLs hides their passwords.

pub mod layers;

use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use figment::providers::{Format, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::api::limits::address::TrustedProxies;
use crate::domain::LinkKey;
pub use layers::ListenAddress;
use layers::{seconds, Environment};

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub listen: ListenAddress,
    pub database_url: String,
    pub pool_size: NonZeroUsize,
    pub link_key_file: Option<PathBuf>,
    /// `ONSHI_LINK_KEY` (hex), when no key file or token label is set.
    pub link_key: Option<SecretString>,
    pub log_format: LogFormat,
    /// Zero: no cache.
    #[serde(deserialize_with = "seconds")]
    pub auth_cache_seconds: Duration,
    pub audit_batch_max: NonZeroUsize,
    pub audit_writers: NonZeroUsize,
    /// Single checks' database look-ups in flight at once ([`crate::eligibility::coalesce`]).
    pub check_lookups: NonZeroUsize,
    pub rate_per_second: u32,
    pub rate_burst: NonZeroU32,
    pub enumeration_misses: u32,
    #[serde(deserialize_with = "seconds")]
    pub enumeration_cooloff_seconds: Duration,
    pub daily_quota: u64,
    pub trusted_proxies: TrustedProxies,
    /// The address ranges `GET /metrics` answers.
    pub metrics_allow: TrustedProxies,
    pub upload_concurrency: NonZeroUsize,
    pub upload_per_party: NonZeroUsize,
    #[serde(deserialize_with = "seconds")]
    pub upload_wait_seconds: Duration,
    #[serde(deserialize_with = "seconds")]
    pub upload_deadline_seconds: Duration,
    pub upload_max_bytes: NonZeroU64,
    pub jpki_trust_dir: Option<PathBuf>,
    pub jpki_crl_dir: Option<PathBuf>,
    #[serde(deserialize_with = "seconds")]
    pub trust_reload_seconds: Duration,
    #[serde(deserialize_with = "seconds")]
    pub challenge_seconds: Duration,
    #[serde(deserialize_with = "seconds")]
    pub upload_idle_seconds: Duration,
    #[serde(deserialize_with = "seconds")]
    pub crl_grace_seconds: Duration,
    pub card_surface_trust_dir: Option<PathBuf>,
    pub public_origin: Option<String>,
    pub health_id: crate::health_id::keys::KeySettings,
    pub tls: crate::tls::TlsSettings,
    pub migration_database_url: Option<String>,
    pub audit: crate::audit::key::AuditSettings,
    pub link_key_pkcs11_label: Option<String>,
    pub proof: crate::proof::ProofSettings,
    pub bulk: crate::bulk::BulkSettings,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// A count the defaults know is not zero.
const fn count(n: usize) -> NonZeroUsize {
    match NonZeroUsize::new(n) {
        Some(n) => n,
        None => panic!("a default count is zero"),
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080"
                .parse()
                .expect("the default listen address is well formed"),
            database_url: "postgres://postgres@127.0.0.1:5432/onshi".into(),
            pool_size: count(16),
            link_key_file: None,
            link_key: None,
            log_format: LogFormat::Text,
            auth_cache_seconds: Duration::from_secs(30),
            audit_batch_max: count(4096),
            audit_writers: count(4),
            check_lookups: count(2),
            rate_per_second: 50,
            rate_burst: NonZeroU32::new(100).expect("not zero"),
            enumeration_misses: 50,
            enumeration_cooloff_seconds: Duration::from_secs(300),
            daily_quota: 0,
            trusted_proxies: TrustedProxies::default(),
            metrics_allow: TrustedProxies::parse(&["127.0.0.1/32", "::1/128"])
                .expect("the default ranges parse"),
            upload_concurrency: count(4),
            upload_per_party: count(1),
            upload_wait_seconds: Duration::from_secs(30),
            upload_deadline_seconds: Duration::from_secs(3600),
            upload_max_bytes: NonZeroU64::MIN.saturating_add((4 << 30) - 1),
            jpki_trust_dir: None,
            jpki_crl_dir: None,
            trust_reload_seconds: Duration::from_secs(300),
            challenge_seconds: Duration::from_secs(120),
            upload_idle_seconds: Duration::from_secs(60),
            crl_grace_seconds: Duration::ZERO,
            card_surface_trust_dir: None,
            public_origin: None,
            health_id: Default::default(),
            tls: Default::default(),
            migration_database_url: None,
            audit: Default::default(),
            link_key_pkcs11_label: None,
            proof: Default::default(),
            bulk: Default::default(),
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("database_url", &redact_password(&self.database_url))
            .field("pool_size", &self.pool_size)
            .field("link_key_file", &self.link_key_file)
            .field("link_key", &self.link_key)
            .field("log_format", &self.log_format)
            .field("auth_cache_seconds", &self.auth_cache_seconds)
            .field("audit_batch_max", &self.audit_batch_max)
            .field("audit_writers", &self.audit_writers)
            .field("check_lookups", &self.check_lookups)
            .field("rate_per_second", &self.rate_per_second)
            .field("rate_burst", &self.rate_burst)
            .field("enumeration_misses", &self.enumeration_misses)
            .field(
                "enumeration_cooloff_seconds",
                &self.enumeration_cooloff_seconds,
            )
            .field("daily_quota", &self.daily_quota)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("metrics_allow", &self.metrics_allow)
            .field("upload_concurrency", &self.upload_concurrency)
            .field("upload_per_party", &self.upload_per_party)
            .field("upload_wait_seconds", &self.upload_wait_seconds)
            .field("upload_deadline_seconds", &self.upload_deadline_seconds)
            .field("upload_max_bytes", &self.upload_max_bytes)
            .field("jpki_trust_dir", &self.jpki_trust_dir)
            .field("jpki_crl_dir", &self.jpki_crl_dir)
            .field("trust_reload_seconds", &self.trust_reload_seconds)
            .field("challenge_seconds", &self.challenge_seconds)
            .field("upload_idle_seconds", &self.upload_idle_seconds)
            .field("crl_grace_seconds", &self.crl_grace_seconds)
            .field("card_surface_trust_dir", &self.card_surface_trust_dir)
            .field("public_origin", &self.public_origin)
            .field("health_id", &self.health_id)
            .field("tls", &self.tls)
            .field(
                "migration_database_url",
                &self.migration_database_url.as_deref().map(redact_password),
            )
            .field("audit", &self.audit)
            .field("link_key_pkcs11_label", &self.link_key_pkcs11_label)
            .field("proof", &self.proof)
            .field("bulk", &self.bulk)
            .finish()
    }
}

impl Settings {
    /// Loads the layers from the process environment, then removes the secrets' variables from
    /// it, so that no child process or later reader finds them there.
    ///
    /// # Errors
    /// A config file that does not parse, or a value of the wrong type or out of its range.
    pub fn load() -> anyhow::Result<Self> {
        let file = std::env::var_os("ONSHI_CONFIG")
            .map(PathBuf::from)
            .or_else(|| {
                let default = PathBuf::from("onshi.toml");
                default.exists().then_some(default)
            });
        let settings = Self::load_from(file.as_deref(), |name| std::env::var(name).ok());
        for (path, names) in layers::VARIABLES {
            if layers::SECRETS.contains(path) {
                for name in *names {
                    std::env::remove_var(name);
                }
            }
        }
        settings
    }

    /// Loads the layers with an explicit file and environment (what [`Settings::load`] uses):
    /// the defaults, then the file, then the environment, each over the one before.
    ///
    /// # Errors
    /// As [`Settings::load`].
    pub fn load_from(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            figment = figment.merge(Toml::file_exact(path));
            // Checked before any value is read, so that no message can quote a secret's value.
            for secret in layers::SECRETS {
                anyhow::ensure!(
                    figment.find_value(secret).is_err(),
                    "{secret} cannot be set in the config file (which is not kept as a \
                     key file is): set {} or the key file setting",
                    layers::variables_of(secret).unwrap_or_default()
                );
            }
        }
        let figment = figment.merge(Environment(env));
        let settings: Settings = figment.extract_lossy().map_err(layers::refused)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Refuses values the server cannot run with, naming the setting (and its environment
    /// variable), rather than clamping them at start: what the types do not already say.
    ///
    /// # Errors
    /// The first setting out of its range.
    pub fn validate(&self) -> anyhow::Result<()> {
        let at_least_a_second = [
            (
                "enumeration_cooloff_seconds",
                self.enumeration_cooloff_seconds,
            ),
            ("upload_deadline_seconds", self.upload_deadline_seconds),
            ("upload_idle_seconds", self.upload_idle_seconds),
            ("trust_reload_seconds", self.trust_reload_seconds),
            ("challenge_seconds", self.challenge_seconds),
            ("audit.checkpoint_seconds", self.audit.checkpoint_seconds),
        ];
        for (name, value) in at_least_a_second {
            anyhow::ensure!(
                value >= Duration::from_secs(1),
                "{name} ({}) must be at least 1, not {}",
                layers::variables_of(name).unwrap_or_default(),
                value.as_secs()
            );
        }
        self.bulk.validate()?;
        anyhow::ensure!(
            self.upload_per_party <= self.upload_concurrency,
            "upload_per_party ({}) cannot exceed upload_concurrency ({})",
            self.upload_per_party,
            self.upload_concurrency
        );
        // A challenge is answered at the desk within minutes; a day is already far too long.
        anyhow::ensure!(
            self.challenge_seconds <= Duration::from_secs(86_400),
            "challenge_seconds (ONSHI_CHALLENGE_SECONDS) must be at most 86400, not {}",
            self.challenge_seconds.as_secs()
        );
        anyhow::ensure!(
            i64::try_from(self.crl_grace_seconds.as_secs()).is_ok(),
            "crl_grace_seconds (ONSHI_CRL_GRACE_SECONDS) is out of range"
        );
        if let Some(origin) = &self.public_origin {
            anyhow::ensure!(
                crate::card::binding::Origin::parse(origin).is_ok(),
                "public_origin (ONSHI_PUBLIC_ORIGIN) must be an http:// or https:// origin, not \
                 {origin:?}"
            );
        }
        Ok(())
    }

    /// The key that turns a My Number into a person link: inside the PKCS#11 token when
    /// `link_key_pkcs11_label` is set, else from `link_key_file` (hex or raw bytes; refused when
    /// other users may read it), else from `link_key` (`ONSHI_LINK_KEY`, hex).
    ///
    /// # Errors
    /// No key configured, an unreadable or world-readable file, a key shorter than 32 bytes, or a
    /// token without the key. The message never contains key material.
    pub fn link_key(&self) -> anyhow::Result<LinkKey> {
        if let Some(label) = &self.link_key_pkcs11_label {
            let token = &self.health_id;
            let module = token
                .pkcs11_module
                .as_ref()
                .context("ONSHI_LINK_KEY_PKCS11_LABEL needs the token: set ONSHI_PKCS11_MODULE")?;
            let key = crate::health_id::keys::Pkcs11Key::open(
                module,
                token
                    .pkcs11_token_label
                    .as_deref()
                    .context("ONSHI_PKCS11_TOKEN_LABEL is required with ONSHI_PKCS11_MODULE")?,
                token
                    .pkcs11_pin_file
                    .as_deref()
                    .context("ONSHI_PKCS11_PIN_FILE is required with ONSHI_PKCS11_MODULE")?,
                label,
            )
            .context("opening the link key in the PKCS#11 token")?;
            return Ok(LinkKey::in_token(Box::new(TokenLinkKey(key))));
        }
        let bytes = if let Some(path) = &self.link_key_file {
            let raw = crate::secret_file::read(path, "link key file")?;
            decode_key_bytes(raw.to_vec())
        } else if let Some(hex) = &self.link_key {
            decode_key_bytes(hex.expose_secret().as_bytes().to_vec())
        } else {
            anyhow::bail!(
                "no link key configured: set ONSHI_LINK_KEY_FILE (a file of 64 hex digits), \
                 ONSHI_LINK_KEY_PKCS11_LABEL (a key in the PKCS#11 token) or ONSHI_LINK_KEY"
            );
        };
        LinkKey::from_bytes(bytes).map_err(|e| anyhow::anyhow!("link key: {}", e.message))
    }
}

/// The link key inside the token, computing `CKM_SHA256_HMAC` as the health-ID key does.
struct TokenLinkKey(crate::health_id::keys::Pkcs11Key);

impl crate::domain::TokenMac for TokenLinkKey {
    fn mac(&self, message: &[u8]) -> anyhow::Result<[u8; 32]> {
        self.0.mac(message)
    }
}

impl Settings {
    /// The URL migrations run with: the schema owner's when configured.
    pub fn migration_url(&self) -> &str {
        self.migration_database_url
            .as_deref()
            .unwrap_or(&self.database_url)
    }
}

/// A key file holds either hex text (as `ops/demo` writes it) or raw bytes.
fn decode_key_bytes(raw: Vec<u8>) -> Vec<u8> {
    let raw = zeroize::Zeroizing::new(raw);
    let trimmed = raw.trim_ascii();
    if trimmed.len() >= 64 && trimmed.iter().all(u8::is_ascii_hexdigit) {
        if let Ok(bytes) = hex::decode(trimmed) {
            return bytes;
        }
    }
    raw.to_vec()
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_file_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("onshi-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("onshi.toml");
        std::fs::write(&file, "listen = \"0.0.0.0:9000\"\npool_size = 4\n").unwrap();
        let env = |name: &str| (name == "ONSHI_POOL_SIZE").then(|| "7".to_string());
        let settings = Settings::load_from(Some(&file), env).unwrap();
        assert_eq!(settings.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(settings.pool_size.get(), 7);
        assert_eq!(settings.auth_cache_seconds, Duration::from_secs(30));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn tls_files_come_from_the_tls_section_or_the_environment() {
        let dir = std::env::temp_dir().join(format!("onshi-config-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("onshi.toml");
        std::fs::write(
            &file,
            "[tls]\ncert_file = \"/etc/onshi/cert.pem\"\nkey_file = \"/etc/onshi/key.pem\"\n",
        )
        .unwrap();
        let env = |name: &str| {
            (name == "ONSHI_TLS_CLIENT_CA_FILE").then(|| "/etc/onshi/clients.pem".to_string())
        };
        let settings = Settings::load_from(Some(&file), env).unwrap();
        assert_eq!(
            settings.tls.cert_file.as_deref(),
            Some(Path::new("/etc/onshi/cert.pem"))
        );
        assert_eq!(
            settings.tls.key_file.as_deref(),
            Some(Path::new("/etc/onshi/key.pem"))
        );
        assert_eq!(
            settings.tls.client_ca_file.as_deref(),
            Some(Path::new("/etc/onshi/clients.pem"))
        );
        assert!(
            Settings::default().tls.cert_file.is_none(),
            "plain HTTP by default"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn values_out_of_range_are_refused_by_name_not_clamped() {
        for (variable, value, named) in [
            ("ONSHI_POOL_SIZE", "0", "pool_size"),
            (
                "ONSHI_AUDIT_CHECKPOINT_SECONDS",
                "0",
                "audit.checkpoint_seconds",
            ),
            ("ONSHI_CHALLENGE_SECONDS", "0", "challenge_seconds"),
            ("ONSHI_CHALLENGE_SECONDS", "999999", "challenge_seconds"),
            ("ONSHI_UPLOAD_PER_PARTY", "9", "upload_per_party"),
            ("ONSHI_LISTEN", "8080", "listen"),
        ] {
            let error = Settings::load_from(None, |name| (name == variable).then(|| value.into()))
                .unwrap_err();
            assert!(
                format!("{error:#}").contains(named),
                "{variable}={value}: {error:#}"
            );
        }
        assert!(
            Settings::load_from(None, |_| None).is_ok(),
            "the defaults are valid"
        );
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        let dir = std::env::temp_dir().join(format!("onshi-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("onshi.toml");
        std::fs::write(&file, "lissen = \"x\"\n").unwrap();
        assert!(Settings::load_from(Some(&file), |_| None).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn debug_hides_the_database_password() {
        let settings = Settings {
            database_url: "postgres://onshi:hunter2@db/onshi".into(),
            ..Settings::default()
        };
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("onshi:***@db"), "{shown}");
    }

    /// A file and an environment as `load_from` takes them; the file is removed on drop.
    struct Layers {
        dir: PathBuf,
    }

    impl Layers {
        fn file(name: &str, text: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("onshi-config-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("onshi.toml"), text).unwrap();
            Layers { dir }
        }

        fn load(&self, env: &[(&str, &str)]) -> anyhow::Result<Settings> {
            Settings::load_from(Some(&self.dir.join("onshi.toml")), |name| {
                env.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            })
        }
    }

    impl Drop for Layers {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn each_layer_overrides_the_one_before_in_every_kind_of_setting() {
        let layers = Layers::file(
            "kinds",
            "auth_cache_seconds = 5\nupload_max_bytes = 1000\ntrusted_proxies = [\"10.0.0.0/8\"]\n\
             [audit]\ncheckpoint_seconds = 7\n[health_id]\npkcs11_token_label = \"from-file\"\n",
        );
        let from_file = layers.load(&[]).unwrap();
        assert_eq!(from_file.auth_cache_seconds, Duration::from_secs(5));
        assert_eq!(from_file.upload_max_bytes.get(), 1000);
        assert_eq!(from_file.audit.checkpoint_seconds, Duration::from_secs(7));
        assert_eq!(from_file.challenge_seconds, Duration::from_secs(120));
        let env = layers
            .load(&[
                ("ONSHI_AUTH_CACHE_SECONDS", "0"),
                ("ONSHI_AUDIT_CHECKPOINT_SECONDS", "9"),
                ("ONSHI_TRUSTED_PROXIES", "192.0.2.1, 2001:db8::/32"),
                // Digits stay text where the setting is text.
                ("ONSHI_PKCS11_TOKEN_LABEL", "1234"),
                ("ONSHI_LISTEN", "[::1]:0"),
                ("DATABASE_URL", "postgres://plain@db/onshi"),
            ])
            .unwrap();
        assert_eq!(env.auth_cache_seconds, Duration::ZERO);
        assert_eq!(env.audit.checkpoint_seconds, Duration::from_secs(9));
        assert_eq!(
            env.upload_max_bytes.get(),
            1000,
            "the file's, not the default"
        );
        assert_eq!(env.health_id.pkcs11_token_label.as_deref(), Some("1234"));
        assert_eq!(env.listen.host(), "[::1]");
        assert_eq!(env.database_url, "postgres://plain@db/onshi");
        assert_eq!(
            env.trusted_proxies,
            TrustedProxies::parse(&["192.0.2.1", "2001:db8::/32"]).unwrap()
        );
        let both = layers
            .load(&[
                ("DATABASE_URL", "postgres://plain@db/onshi"),
                ("ONSHI_DATABASE_URL", "postgres://onshi@db/onshi"),
            ])
            .unwrap();
        assert_eq!(both.database_url, "postgres://onshi@db/onshi");
    }

    #[test]
    fn a_bad_value_is_refused_with_the_setting_and_where_it_came_from() {
        let layers = Layers::file("bad", "pool_size = 0\n");
        let error = format!("{:#}", layers.load(&[]).unwrap_err());
        assert!(
            error.contains("pool_size") && error.contains("onshi.toml"),
            "{error}"
        );
        assert!(error.contains("nonzero"), "{error}");
        let layers = Layers::file("bad-env", "");
        for (variable, value, named, why) in [
            ("ONSHI_AUDIT_WRITERS", "0", "audit_writers", "nonzero"),
            ("ONSHI_UPLOAD_MAX_BYTES", "-1", "upload_max_bytes", "-1"),
            (
                "ONSHI_AUTH_CACHE_SECONDS",
                "soon",
                "auth_cache_seconds",
                "soon",
            ),
            ("ONSHI_RATE_BURST", "4294967296", "rate_burst", "u32"),
            ("ONSHI_LOG_FORMAT", "xml", "log_format", "json"),
            (
                "ONSHI_TRUSTED_PROXIES",
                "10.0.0.0/8,proxy",
                "trusted_proxies",
                "proxy",
            ),
            (
                "ONSHI_UPLOAD_IDLE_SECONDS",
                "0",
                "upload_idle_seconds",
                "at least 1",
            ),
            (
                "ONSHI_PUBLIC_ORIGIN",
                "ftp://x",
                "public_origin",
                "https://",
            ),
            ("ONSHI_LISTEN", "localhost", "listen", "host:port"),
        ] {
            let error = format!("{:#}", layers.load(&[(variable, value)]).unwrap_err());
            assert!(
                error.contains(named) && error.contains(variable) && error.contains(why),
                "{variable}={value}: {error}"
            );
        }
    }

    #[test]
    fn secrets_come_from_the_environment_and_never_show_in_debug() {
        let layers = Layers::file("secret", "");
        let link = "0123456789".repeat(7);
        let health = "fedcba9876".repeat(7);
        let settings = layers
            .load(&[
                ("ONSHI_LINK_KEY", &link),
                ("ONSHI_HEALTH_ID_KEY", &health),
                ("ONSHI_DATABASE_URL", "postgres://onshi:hunter2@db/onshi"),
            ])
            .unwrap();
        // All decimal digits: still the text that was set, not a number.
        assert_eq!(
            settings
                .link_key
                .as_ref()
                .map(|k| k.expose_secret().to_owned()),
            Some(link.clone())
        );
        assert!(settings.link_key().is_ok());
        assert!(settings.health_id.open().unwrap().is_some());
        let shown = format!("{settings:?}");
        for secret in [&link[..20], &health[..20], "hunter2"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        let in_file = Layers::file("secret-file", &format!("link_key = \"{link}\"\n"));
        let error = format!("{:#}", in_file.load(&[]).unwrap_err());
        assert!(
            error.contains("link_key") && error.contains("config file"),
            "{error}"
        );
        assert!(!error.contains(&link[..20]), "{error}");
    }

    #[test]
    fn key_files_may_hold_hex_or_raw_bytes() {
        let hex_text = format!("{}\n", "ab".repeat(32));
        assert_eq!(decode_key_bytes(hex_text.into_bytes()), vec![0xab; 32]);
        assert_eq!(decode_key_bytes(vec![7; 40]), vec![7; 40]);
    }
}
