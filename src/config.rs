//! Typed, layered configuration: defaults, then an optional TOML file, then the environment.
//!
//! | setting | env | default |
//! |---|---|---|
//! | `listen` | `ONSHI_LISTEN` | `127.0.0.1:8080` |
//! | `database_url` | `DATABASE_URL` or `ONSHI_DATABASE_URL` | `postgres://postgres@127.0.0.1:5432/onshi` |
//! | `pool_size` | `ONSHI_POOL_SIZE` | 16 |
//! | `link_key_file` | `ONSHI_LINK_KEY_FILE` | none; `ONSHI_LINK_KEY` (hex) may be used instead |
//! | `log_format` | `ONSHI_LOG_FORMAT` (`text` or `json`) | `text` |
//! | `auth_cache_seconds` | `ONSHI_AUTH_CACHE_SECONDS` | 30 |
//! | `audit_batch_max` | `ONSHI_AUDIT_BATCH_MAX` | 4096 |
//! | `audit_writers` | `ONSHI_AUDIT_WRITERS` (each its own session and chain lane) | 4 |
//! | `rate_per_second` | `ONSHI_RATE_PER_SECOND` (queries per party, shared by every server; 0 = no limit) | 50 |
//! | `rate_burst` | `ONSHI_RATE_BURST` | 100 |
//! | `daily_quota` | `ONSHI_DAILY_QUOTA` (queries per party and Japanese day, every server; 0 = none) | 0 |
//! | `enumeration_misses` | `ONSHI_ENUMERATION_MISSES` (distinct not-found keys a minute that flag a party; 0 = off) | 50 |
//! | `enumeration_cooloff_seconds` | `ONSHI_ENUMERATION_COOLOFF_SECONDS` (`Retry-After` of a flagged party, which stays refused until cleared) | 300 |
//! | `trusted_proxies` | `ONSHI_TRUSTED_PROXIES` (comma-separated addresses or CIDR blocks whose `X-Forwarded-For` is believed) | none |
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
//!
//! The file is `ONSHI_CONFIG` if set, else `onshi.toml` in the working directory if present.
//! Secrets (the link key) are read from a file or the environment and never logged: [`Settings`]
//! holds only the key file's path, and `Debug` of the database URL hides its password.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::domain::LinkKey;

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub listen: String,
    pub database_url: String,
    pub pool_size: usize,
    pub link_key_file: Option<PathBuf>,
    pub log_format: LogFormat,
    pub auth_cache_seconds: u64,
    pub audit_batch_max: usize,
    pub audit_writers: usize,
    pub rate_per_second: u32,
    pub rate_burst: u32,
    pub enumeration_misses: u32,
    pub enumeration_cooloff_seconds: u64,
    pub daily_quota: u64,
    pub trusted_proxies: Vec<String>,
    pub upload_concurrency: usize,
    pub upload_per_party: usize,
    pub upload_wait_seconds: u64,
    pub upload_deadline_seconds: u64,
    pub upload_max_bytes: u64,
    pub jpki_trust_dir: Option<PathBuf>,
    pub jpki_crl_dir: Option<PathBuf>,
    pub trust_reload_seconds: u64,
    pub challenge_seconds: u64,
    pub upload_idle_seconds: u64,
    pub crl_grace_seconds: u64,
    pub card_surface_trust_dir: Option<PathBuf>,
    pub public_origin: Option<String>,
    pub health_id: crate::health_id::keys::KeySettings,
    pub tls: crate::tls::TlsSettings,
    pub migration_database_url: Option<String>,
    pub audit: crate::audit::key::AuditSettings,
    pub link_key_pkcs11_label: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            database_url: "postgres://postgres@127.0.0.1:5432/onshi".into(),
            pool_size: 16,
            link_key_file: None,
            log_format: LogFormat::Text,
            auth_cache_seconds: 30,
            audit_batch_max: 4096,
            audit_writers: 4,
            rate_per_second: 50,
            rate_burst: 100,
            enumeration_misses: 50,
            enumeration_cooloff_seconds: 300,
            daily_quota: 0,
            trusted_proxies: Vec::new(),
            upload_concurrency: 4,
            upload_per_party: 1,
            upload_wait_seconds: 30,
            upload_deadline_seconds: 3600,
            upload_max_bytes: 4 << 30,
            jpki_trust_dir: None,
            jpki_crl_dir: None,
            trust_reload_seconds: 300,
            challenge_seconds: 120,
            upload_idle_seconds: 60,
            crl_grace_seconds: 0,
            card_surface_trust_dir: None,
            public_origin: None,
            health_id: Default::default(),
            tls: Default::default(),
            migration_database_url: None,
            audit: Default::default(),
            link_key_pkcs11_label: None,
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
            .field("log_format", &self.log_format)
            .field("auth_cache_seconds", &self.auth_cache_seconds)
            .field("audit_batch_max", &self.audit_batch_max)
            .field("audit_writers", &self.audit_writers)
            .field("rate_per_second", &self.rate_per_second)
            .field("rate_burst", &self.rate_burst)
            .field("enumeration_misses", &self.enumeration_misses)
            .field(
                "enumeration_cooloff_seconds",
                &self.enumeration_cooloff_seconds,
            )
            .field("daily_quota", &self.daily_quota)
            .field("trusted_proxies", &self.trusted_proxies)
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
            .finish()
    }
}

/// Overrides `field` with the environment variable `name` when it is set.
fn number<T: std::str::FromStr>(
    env: &impl Fn(&str) -> Option<String>,
    name: &str,
    field: &mut T,
) -> anyhow::Result<()> {
    if let Some(v) = env(name) {
        *field = v
            .parse()
            .map_err(|_| anyhow::anyhow!("{name} must be a number"))?;
    }
    Ok(())
}

impl Settings {
    /// Loads the layers from the process environment.
    ///
    /// # Errors
    /// A config file that does not parse, or an environment value of the wrong type.
    pub fn load() -> anyhow::Result<Self> {
        let file = std::env::var_os("ONSHI_CONFIG")
            .map(PathBuf::from)
            .or_else(|| {
                let default = PathBuf::from("onshi.toml");
                default.exists().then_some(default)
            });
        Self::load_from(file.as_deref(), |name| std::env::var(name).ok())
    }

    /// Loads the layers with an explicit file and environment (what [`Settings::load`] uses).
    ///
    /// # Errors
    /// As [`Settings::load`].
    pub fn load_from(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let mut settings = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => Settings::default(),
        };
        if let Some(v) = env("ONSHI_LISTEN") {
            settings.listen = v;
        }
        if let Some(v) = env("ONSHI_DATABASE_URL").or_else(|| env("DATABASE_URL")) {
            settings.database_url = v;
        }
        number(&env, "ONSHI_POOL_SIZE", &mut settings.pool_size)?;
        if let Some(v) = env("ONSHI_LINK_KEY_FILE") {
            settings.link_key_file = Some(v.into());
        }
        if let Some(v) = env("ONSHI_LOG_FORMAT") {
            settings.log_format = match v.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => anyhow::bail!("ONSHI_LOG_FORMAT must be text or json"),
            };
        }
        number(
            &env,
            "ONSHI_AUTH_CACHE_SECONDS",
            &mut settings.auth_cache_seconds,
        )?;
        number(&env, "ONSHI_AUDIT_BATCH_MAX", &mut settings.audit_batch_max)?;
        number(&env, "ONSHI_AUDIT_WRITERS", &mut settings.audit_writers)?;
        number(
            &env,
            "ONSHI_UPLOAD_IDLE_SECONDS",
            &mut settings.upload_idle_seconds,
        )?;
        number(&env, "ONSHI_RATE_PER_SECOND", &mut settings.rate_per_second)?;
        number(&env, "ONSHI_RATE_BURST", &mut settings.rate_burst)?;
        number(
            &env,
            "ONSHI_ENUMERATION_MISSES",
            &mut settings.enumeration_misses,
        )?;
        number(
            &env,
            "ONSHI_ENUMERATION_COOLOFF_SECONDS",
            &mut settings.enumeration_cooloff_seconds,
        )?;
        number(&env, "ONSHI_DAILY_QUOTA", &mut settings.daily_quota)?;
        if let Some(v) = env("ONSHI_TRUSTED_PROXIES") {
            settings.trusted_proxies = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
        }
        number(
            &env,
            "ONSHI_UPLOAD_CONCURRENCY",
            &mut settings.upload_concurrency,
        )?;
        number(
            &env,
            "ONSHI_UPLOAD_PER_PARTY",
            &mut settings.upload_per_party,
        )?;
        number(
            &env,
            "ONSHI_UPLOAD_WAIT_SECONDS",
            &mut settings.upload_wait_seconds,
        )?;
        number(
            &env,
            "ONSHI_UPLOAD_DEADLINE_SECONDS",
            &mut settings.upload_deadline_seconds,
        )?;
        number(
            &env,
            "ONSHI_UPLOAD_MAX_BYTES",
            &mut settings.upload_max_bytes,
        )?;
        if let Some(v) = env("ONSHI_JPKI_TRUST_DIR") {
            settings.jpki_trust_dir = Some(v.into());
        }
        if let Some(v) = env("ONSHI_JPKI_CRL_DIR") {
            settings.jpki_crl_dir = Some(v.into());
        }
        number(
            &env,
            "ONSHI_TRUST_RELOAD_SECONDS",
            &mut settings.trust_reload_seconds,
        )?;
        number(
            &env,
            "ONSHI_CHALLENGE_SECONDS",
            &mut settings.challenge_seconds,
        )?;
        number(
            &env,
            "ONSHI_CRL_GRACE_SECONDS",
            &mut settings.crl_grace_seconds,
        )?;
        if let Some(v) = env("ONSHI_CARD_SURFACE_TRUST_DIR") {
            settings.card_surface_trust_dir = Some(v.into());
        }
        if let Some(v) = env("ONSHI_PUBLIC_ORIGIN") {
            settings.public_origin = Some(v);
        }
        settings.health_id.apply_env(&env);
        settings.tls.apply_env(&env);
        if let Some(v) = env("ONSHI_MIGRATION_DATABASE_URL") {
            settings.migration_database_url = Some(v);
        }
        settings.audit.apply_env(&env)?;
        if let Some(v) = env("ONSHI_LINK_KEY_PKCS11_LABEL") {
            settings.link_key_pkcs11_label = Some(v);
        }
        settings.validate()?;
        Ok(settings)
    }

    /// Refuses values the server cannot run with, naming the setting (and its environment
    /// variable), rather than clamping them at start.
    ///
    /// # Errors
    /// The first setting out of its range.
    pub fn validate(&self) -> anyhow::Result<()> {
        let at_least_one: [(&str, &str, u64); 11] = [
            ("pool_size", "ONSHI_POOL_SIZE", self.pool_size as u64),
            (
                "audit_writers",
                "ONSHI_AUDIT_WRITERS",
                self.audit_writers as u64,
            ),
            (
                "audit_batch_max",
                "ONSHI_AUDIT_BATCH_MAX",
                self.audit_batch_max as u64,
            ),
            (
                "upload_concurrency",
                "ONSHI_UPLOAD_CONCURRENCY",
                self.upload_concurrency as u64,
            ),
            (
                "upload_per_party",
                "ONSHI_UPLOAD_PER_PARTY",
                self.upload_per_party as u64,
            ),
            (
                "upload_deadline_seconds",
                "ONSHI_UPLOAD_DEADLINE_SECONDS",
                self.upload_deadline_seconds,
            ),
            (
                "upload_max_bytes",
                "ONSHI_UPLOAD_MAX_BYTES",
                self.upload_max_bytes,
            ),
            (
                "upload_idle_seconds",
                "ONSHI_UPLOAD_IDLE_SECONDS",
                self.upload_idle_seconds,
            ),
            (
                "trust_reload_seconds",
                "ONSHI_TRUST_RELOAD_SECONDS",
                self.trust_reload_seconds,
            ),
            (
                "challenge_seconds",
                "ONSHI_CHALLENGE_SECONDS",
                self.challenge_seconds,
            ),
            (
                "audit.checkpoint_seconds",
                "ONSHI_AUDIT_CHECKPOINT_SECONDS",
                self.audit.checkpoint_seconds,
            ),
        ];
        for (name, variable, value) in at_least_one {
            anyhow::ensure!(
                value >= 1,
                "{name} ({variable}) must be at least 1, not {value}"
            );
        }
        anyhow::ensure!(
            self.upload_per_party <= self.upload_concurrency,
            "upload_per_party ({}) cannot exceed upload_concurrency ({})",
            self.upload_per_party,
            self.upload_concurrency
        );
        // A challenge is answered at the desk within minutes; a day is already far too long.
        anyhow::ensure!(
            self.challenge_seconds <= 86_400,
            "challenge_seconds (ONSHI_CHALLENGE_SECONDS) must be at most 86400, not {}",
            self.challenge_seconds
        );
        let port = self
            .listen
            .rsplit_once(':')
            .and_then(|(host, port)| (!host.is_empty()).then_some(port))
            .and_then(|port| port.parse::<u16>().ok());
        anyhow::ensure!(
            port.is_some(),
            "listen (ONSHI_LISTEN) must be host:port, not {:?}",
            self.listen
        );
        Ok(())
    }

    /// The key that turns a My Number into a person link: inside the PKCS#11 token when
    /// `link_key_pkcs11_label` is set, else from `link_key_file` (hex or raw bytes; refused when
    /// other users may read it), else from `ONSHI_LINK_KEY` (hex), which is then removed from the
    /// process environment so that no child process or later reader finds it there.
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
        } else if let Ok(hex) = std::env::var("ONSHI_LINK_KEY") {
            // Read once at start, before the server spawns anything that reads the environment.
            std::env::remove_var("ONSHI_LINK_KEY");
            decode_key_bytes(zeroize::Zeroizing::new(hex).as_bytes().to_vec())
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
        assert_eq!(settings.listen, "0.0.0.0:9000");
        assert_eq!(settings.pool_size, 7);
        assert_eq!(settings.auth_cache_seconds, 30);
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

    #[test]
    fn key_files_may_hold_hex_or_raw_bytes() {
        let hex_text = format!("{}\n", "ab".repeat(32));
        assert_eq!(decode_key_bytes(hex_text.into_bytes()), vec![0xab; 32]);
        assert_eq!(decode_key_bytes(vec![7; 40]), vec![7; 40]);
    }
}
