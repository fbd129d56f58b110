//! How onshi reaches PostgreSQL: the database URL's own settings, with `sslmode` and
//! `sslrootcert` honoured as libpq honours them, over rustls.
//!
//! | `sslmode` | TLS | server certificate |
//! |---|---|---|
//! | `disable` | never | - |
//! | `allow`, `prefer` (the default, as in libpq) | when the server offers it | not checked |
//! | `require` | always | not checked, unless `sslrootcert` is given (then as `verify-ca`) |
//! | `verify-ca` | always | chain to the roots |
//! | `verify-full` | always | chain to the roots, and the host name or address in the URL |
//!
//! The roots are the PEM file named by `sslrootcert`, or the system's store for
//! `sslrootcert=system` and when no file is named. Only the URL form
//! (`postgres://user@host:port/db?sslmode=verify-full&sslrootcert=/etc/onshi/db-ca.pem`) takes
//! `verify-ca` and `verify-full`; the key/value form takes the modes up to `require`.
//!
//! Production uses `verify-full`: anything less lets whoever sits on the path read every insured
//! number that goes by, or pose as the database.

use std::sync::Arc;

use anyhow::Context;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// What a database URL asks of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Encrypt (where TLS is used) but accept any certificate, as libpq's `prefer`/`require`.
    Nothing,
    /// The certificate chains to the roots; its names are not compared.
    Chain,
    /// The certificate chains to the roots and names the host connected to.
    ChainAndHost,
}

/// A parsed database URL with the TLS connector its `sslmode` calls for: opens sessions and
/// pools. Cheap to clone.
#[derive(Clone)]
pub struct Connector {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    verify: Verify,
}

impl std::fmt::Debug for Connector {
    // The configuration holds the password: show where it goes, never the credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("hosts", &self.config.get_hosts())
            .field("ssl_mode", &self.config.get_ssl_mode())
            .field("verify", &self.verify)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// Parses `database_url` (URL or key/value form).
    ///
    /// # Errors
    /// A malformed URL, an unknown `sslmode`, or an unreadable or empty `sslrootcert` file.
    pub fn parse(database_url: &str) -> anyhow::Result<Connector> {
        let (rest, ssl) = split_ssl_settings(database_url)?;
        let mut config: tokio_postgres::Config = rest
            .parse()
            .context("parsing the database URL (verify-ca and verify-full need the URL form)")?;
        let verify = match ssl.mode.as_deref() {
            None => Verify::Nothing,
            Some("disable") => {
                config.ssl_mode(SslMode::Disable);
                Verify::Nothing
            }
            Some("allow" | "prefer") => {
                config.ssl_mode(SslMode::Prefer);
                Verify::Nothing
            }
            Some("require") => {
                config.ssl_mode(SslMode::Require);
                if ssl.root_cert.is_some() {
                    Verify::Chain
                } else {
                    Verify::Nothing
                }
            }
            Some("verify-ca") => {
                config.ssl_mode(SslMode::Require);
                Verify::Chain
            }
            Some("verify-full") => {
                config.ssl_mode(SslMode::Require);
                Verify::ChainAndHost
            }
            Some(other) => anyhow::bail!(
                "the database URL's sslmode {other:?} is none of disable, allow, prefer, \
                 require, verify-ca, verify-full"
            ),
        };
        let tls = MakeRustlsConnect::new(client_config(verify, ssl.root_cert.as_deref())?);
        Ok(Connector {
            config,
            tls,
            verify,
        })
    }

    /// The URL with the settings of the server's own sessions (pooled or dedicated).
    ///
    /// # Errors
    /// As [`Connector::parse`].
    pub fn for_server(database_url: &str) -> anyhow::Result<Connector> {
        let mut connector = Connector::parse(database_url)?;
        super::server_session_options(&mut connector.config);
        Ok(connector)
    }

    /// What is checked of the server's certificate.
    pub fn verify(&self) -> Verify {
        self.verify
    }

    /// The underlying session settings.
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// Opens one session; its connection task logs how it ended.
    ///
    /// # Errors
    /// The database is unreachable, refuses the session, or fails the certificate check.
    pub async fn connect(&self) -> anyhow::Result<tokio_postgres::Client> {
        let (client, connection) = self.connect_raw().await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(
                    error = super::errors::describe(&anyhow::Error::new(error)),
                    "database connection ended"
                );
            }
        });
        Ok(client)
    }

    /// Opens one session and hands back its connection for the caller to drive (to read
    /// notifications, for example).
    ///
    /// # Errors
    /// As [`Connector::connect`].
    pub async fn connect_raw(
        &self,
    ) -> anyhow::Result<(
        tokio_postgres::Client,
        tokio_postgres::Connection<tokio_postgres::Socket, DbStream>,
    )> {
        self.config
            .connect(self.tls.clone())
            .await
            .context("connecting to the database")
    }

    /// A deadpool manager opening sessions like [`Connector::connect`].
    pub fn manager(&self, config: deadpool_postgres::ManagerConfig) -> deadpool_postgres::Manager {
        deadpool_postgres::Manager::from_config(self.config.clone(), self.tls.clone(), config)
    }
}

/// The stream of a session opened by a [`Connector`].
pub type DbStream =
    <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>>::Stream;

#[derive(Debug, Default)]
struct SslSettings {
    mode: Option<String>,
    root_cert: Option<String>,
}

/// Takes `sslmode` and `sslrootcert` out of a URL's query (tokio-postgres knows neither
/// `verify-*` nor `sslrootcert`); other forms pass through for tokio-postgres to read.
fn split_ssl_settings(database_url: &str) -> anyhow::Result<(String, SslSettings)> {
    let mut ssl = SslSettings::default();
    let is_url =
        database_url.starts_with("postgres://") || database_url.starts_with("postgresql://");
    let Some((base, query)) = database_url.split_once('?').filter(|_| is_url) else {
        return Ok((database_url.to_owned(), ssl));
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => ssl.mode = Some(percent_decode(value)?),
            "sslrootcert" => ssl.root_cert = Some(percent_decode(value)?),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, ssl))
}

/// A URL setting's value, %-decoded as libpq decodes URI parameters.
fn percent_decode(value: &str) -> anyhow::Result<String> {
    percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .context("the database URL's settings are not UTF-8")
}

fn client_config(verify: Verify, root_cert: Option<&str>) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("the TLS protocol versions")?;
    let config = match verify {
        Verify::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate { provider }))
            .with_no_client_auth(),
        Verify::Chain | Verify::ChainAndHost => {
            let roots = Arc::new(roots(root_cert)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .context("building the database certificate verifier")?;
            if verify == Verify::ChainAndHost {
                builder.with_webpki_verifier(webpki).with_no_client_auth()
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly { webpki }))
                    .with_no_client_auth()
            }
        }
    };
    Ok(config)
}

fn roots(root_cert: Option<&str>) -> anyhow::Result<RootCertStore> {
    use rustls::pki_types::pem::PemObject;
    let mut store = RootCertStore::empty();
    match root_cert {
        None | Some("system") => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // A system store holds the odd certificate rustls cannot use; skip those.
                let _ = store.add(cert);
            }
            anyhow::ensure!(
                !store.is_empty(),
                "the system's certificate store has no usable root for the database's \
                 certificate: name the database's CA with sslrootcert=FILE"
            );
        }
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .with_context(|| format!("reading the database CA file {path} (sslrootcert)"))?
                .collect::<Result<_, _>>()
                .with_context(|| format!("reading the database CA file {path} (sslrootcert)"))?;
            for cert in certs {
                store
                    .add(cert)
                    .with_context(|| format!("a certificate in {path} (sslrootcert)"))?;
            }
            anyhow::ensure!(
                !store.is_empty(),
                "the database CA file {path} (sslrootcert) holds no certificate"
            );
        }
    }
    Ok(store)
}

/// libpq's `prefer`/`require` without a root file: the session is encrypted, the certificate
/// is not checked (handshake signatures still are).
#[derive(Debug)]
struct AnyCertificate {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `verify-ca`: the web PKI checks with the name comparison left out.
#[derive(Debug)]
struct ChainOnly {
    webpki: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::{split_ssl_settings, Connector, Verify};

    #[test]
    fn ssl_settings_leave_the_url_and_the_rest_stays() {
        let (rest, ssl) = split_ssl_settings(
            "postgres://u@h:5432/db?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u@h:5432/db?application_name=x");
        assert_eq!(ssl.mode.as_deref(), Some("verify-full"));
        assert_eq!(ssl.root_cert.as_deref(), Some("/etc/ca.pem"));
    }

    #[test]
    fn modes_map_as_libpq_maps_them() {
        let verify = |url: &str| Connector::parse(url).unwrap().verify();
        assert_eq!(verify("postgres://u@h/db"), Verify::Nothing);
        assert_eq!(verify("postgres://u@h/db?sslmode=require"), Verify::Nothing);
        assert_eq!(
            verify("postgres://u@h/db?sslmode=verify-full&sslrootcert=system"),
            Verify::ChainAndHost
        );
        assert_eq!(
            verify("postgres://u@h/db?sslmode=verify-ca&sslrootcert=system"),
            Verify::Chain
        );
        assert_eq!(verify("host=h user=u sslmode=require"), Verify::Nothing);
    }

    #[test]
    fn unknown_modes_and_missing_root_files_are_refused() {
        let error = Connector::parse("postgres://u@h/db?sslmode=verify-everything").unwrap_err();
        assert!(format!("{error:#}").contains("verify-everything"));
        let error = Connector::parse(
            "postgres://u@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        )
        .unwrap_err();
        assert!(
            format!("{error:#}").contains("/nonexistent/ca.pem"),
            "{error:#}"
        );
    }

    #[test]
    fn the_password_never_shows_in_debug() {
        let connector = Connector::parse("postgres://u:hunter2@h/db").unwrap();
        assert!(!format!("{connector:?}").contains("hunter2"));
    }
}
