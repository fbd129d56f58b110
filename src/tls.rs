//! Optional TLS for `onshi serve`, with optional client certificates (mutual TLS).
//!
//! With `tls.cert_file` and `tls.key_file` set the server speaks only TLS (rustls, `ring`
//! provider); without them, plain HTTP as before (for a deployment that terminates TLS in front).
//! With `tls.client_ca_file` as well, the handshake requires a client certificate that chains to
//! one of that file's CAs; a connection without one never reaches the application.
//!
//! A client certificate is an additional factor, never a replacement for the bearer token: the
//! token still names the party, and [`crate::api::auth`] then checks that the certificate
//! presented on the connection ([`PeerCertificate`], put in by [`on_connect`]) is one registered
//! for that party. A party with no registered certificate keeps working with its token alone, so
//! a deployment that wants certificates from everyone registers them for everyone.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;
use anyhow::Context;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use crate::domain::CertFingerprint;

/// The `[tls]` settings (see `src/config.rs` for the table of all settings).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// The server's certificate chain, PEM, leaf first.
    pub cert_file: Option<PathBuf>,
    /// The server's private key, PEM (PKCS#8, PKCS#1 or SEC1). Only its path is held here.
    pub key_file: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates must chain to; when set, every connection
    /// must present one.
    pub client_ca_file: Option<PathBuf>,
}

impl TlsSettings {
    /// The rustls configuration to serve with, or `None` for plain HTTP.
    ///
    /// # Errors
    /// Only one of certificate and key set, a client CA without them (it would silently do
    /// nothing), or a file that is missing, not PEM, or does not fit (key not matching the
    /// certificate). Messages name files, never their contents.
    pub fn server_config(&self) -> anyhow::Result<Option<ServerConfig>> {
        let (cert_file, key_file) = match (&self.cert_file, &self.key_file) {
            (None, None) => {
                anyhow::ensure!(
                    self.client_ca_file.is_none(),
                    "ONSHI_TLS_CLIENT_CA_FILE needs ONSHI_TLS_CERT_FILE and ONSHI_TLS_KEY_FILE: \
                     client certificates are only asked for over TLS"
                );
                return Ok(None);
            }
            (Some(cert), Some(key)) => (cert, key),
            _ => anyhow::bail!("set both ONSHI_TLS_CERT_FILE and ONSHI_TLS_KEY_FILE, or neither"),
        };
        let chain = certificates(cert_file)?;
        let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
            anyhow::anyhow!(
                "reading the TLS key file {}: {}",
                key_file.display(),
                pem_problem(&e)
            )
        })?;
        // An explicit provider, so that no other crate's choice of a process default matters.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?;
        let builder = match &self.client_ca_file {
            None => builder.with_no_client_auth(),
            Some(ca_file) => builder.with_client_cert_verifier(client_verifier(ca_file, provider)?),
        };
        let config = builder.with_single_cert(chain, key).with_context(|| {
            format!(
                "the TLS key in {} does not fit the certificate in {}",
                key_file.display(),
                cert_file.display()
            )
        })?;
        Ok(Some(config))
    }
}

/// Requires a client certificate chained to one of the CAs in `ca_file` (no anonymous clients).
fn client_verifier(
    ca_file: &Path,
    provider: Arc<CryptoProvider>,
) -> anyhow::Result<Arc<dyn rustls::server::danger::ClientCertVerifier>> {
    let mut roots = RootCertStore::empty();
    for ca in certificates(ca_file)? {
        roots
            .add(ca)
            .with_context(|| format!("a CA certificate in {} is not usable", ca_file.display()))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .with_context(|| format!("client CAs from {}", ca_file.display()))
}

/// Every certificate in a PEM file; at least one.
fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("reading {}: {}", path.display(), pem_problem(&e)))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{} holds no PEM certificate",
        path.display()
    );
    Ok(certs)
}

/// Says what is wrong with a PEM file without quoting it (it may be a key).
fn pem_problem(e: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error;
    match e {
        Error::Io(io) => io.to_string(),
        Error::NoItemsFound => "no PEM block of the expected kind".into(),
        _ => "not valid PEM".into(),
    }
}

/// The client certificate a TLS connection presented at the handshake (already verified
/// against the client CAs), kept in the connection's data for [`crate::api::auth`].
#[derive(Clone, Copy, Debug)]
pub struct PeerCertificate(pub CertFingerprint);

/// `HttpServer::on_connect` hook: records the fingerprint of the client's end-entity
/// certificate. Plain HTTP connections and TLS connections without one get nothing.
pub fn on_connect(connection: &dyn std::any::Any, data: &mut Extensions) {
    let Some(tls) =
        connection.downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<TcpStream>>()
    else {
        return;
    };
    let (_, session) = tls.get_ref();
    if let Some(leaf) = session.peer_certificates().and_then(|chain| chain.first()) {
        data.insert(PeerCertificate(CertFingerprint::of_der(leaf)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(cert: bool, key: bool, ca: bool) -> TlsSettings {
        TlsSettings {
            cert_file: cert.then(|| "/nonexistent/cert.pem".into()),
            key_file: key.then(|| "/nonexistent/key.pem".into()),
            client_ca_file: ca.then(|| "/nonexistent/ca.pem".into()),
        }
    }

    #[test]
    fn no_files_means_plain_http_and_half_a_setup_is_refused() {
        assert!(settings(false, false, false)
            .server_config()
            .unwrap()
            .is_none());
        for (cert, key, ca) in [
            (true, false, false),
            (false, true, true),
            (false, false, true),
        ] {
            let err = settings(cert, key, ca).server_config().unwrap_err();
            assert!(format!("{err:#}").contains("ONSHI_TLS_"), "{err:#}");
        }
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = settings(true, true, false).server_config().unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent/cert.pem"),
            "{err:#}"
        );
    }
}
