//! TLS to PostgreSQL: a cluster of the test's own takes TLS sessions only, with a certificate
//! from a throwaway CA for the name `localhost`. The database URL's `sslmode` and `sslrootcert`
//! decide what onshi checks, as libpq decides (and psql, an independent client, agrees on the
//! same URLs).

use onshi::parties::Role;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use serde_json::json;

use crate::helpers::{on_database, spawn_app_on, status_and_json, Csv, INSURER};
use crate::own_server::{OwnServer, ServerTls};

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// The cluster, the URL prefix of each way to reach it, and the CA files.
struct Setup {
    server: OwnServer,
    dir: std::path::PathBuf,
    ca_file: String,
    stranger_ca_file: String,
}

impl Setup {
    async fn new() -> Setup {
        let dir =
            std::env::temp_dir().join(format!("onshi-db-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = new_ca("onshi test database CA");
        let stranger = new_ca("a CA nobody configured");
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "onshi test database");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &ca).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let stranger_ca_file = dir.join("stranger-ca.pem");
        std::fs::write(&stranger_ca_file, stranger.pem()).unwrap();
        let server = OwnServer::create_with_tls(ServerTls {
            cert_pem: &cert.pem(),
            key_pem: &key.serialize_pem(),
        })
        .await
        .expect("the PostgreSQL server binaries (initdb, pg_ctl) are needed: run ops/test");
        Setup {
            server,
            dir,
            ca_file: ca_file.display().to_string(),
            stranger_ca_file: stranger_ca_file.display().to_string(),
        }
    }

    /// The server's URL by `host`, without a database, with `settings` as its query.
    fn url(&self, host: &str, settings: &str) -> String {
        format!(
            "postgres://postgres@{host}:{}?{settings}",
            self.server.port()
        )
    }

    fn verify_full(&self, host: &str, ca: &str) -> String {
        self.url(host, &format!("sslmode=verify-full&sslrootcert={ca}"))
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What onshi's connector makes of `server_url`: `Ok(ssl in use)` or the error text.
async fn onshi_connects(server_url: &str) -> Result<bool, String> {
    let url = on_database(server_url, "postgres");
    let client = onshi::store::connect(&url)
        .await
        .map_err(|e| format!("{e:#}"))?;
    let row = client
        .query_one(
            "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| format!("{e:#}"))?;
    Ok(row.get(0))
}

/// What libpq (psql) makes of the same URL: `Ok(ssl in use)` or its error text.
fn psql_connects(server_url: &str) -> Result<bool, String> {
    let output = std::process::Command::new("psql")
        .args([
            &on_database(server_url, "postgres"),
            "-XAtc",
            "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
        ])
        .output()
        .expect("psql runs");
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim() == "t")
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_is_honoured_as_libpq_honours_it() {
    let setup = Setup::new().await;

    // The cluster refuses plain sessions, so every success below is over TLS.
    let plain = setup.url("127.0.0.1", "sslmode=disable");
    let error = onshi_connects(&plain).await.unwrap_err();
    assert!(
        error.contains("no encryption") || error.contains("pg_hba"),
        "{error}"
    );
    assert!(psql_connects(&plain).is_err());

    // Each case: the URL, and whether a session is expected.
    let cases = [
        // Encrypted, certificate not checked (libpq's require and prefer).
        (setup.url("127.0.0.1", "sslmode=require"), true),
        (setup.url("127.0.0.1", "sslmode=prefer"), true),
        // The chain to the configured CA, the name `localhost` matching.
        (setup.verify_full("localhost", &setup.ca_file), true),
        // The address is not a name in the certificate: verify-full refuses, verify-ca accepts.
        (setup.verify_full("127.0.0.1", &setup.ca_file), false),
        (
            setup.url(
                "127.0.0.1",
                &format!("sslmode=verify-ca&sslrootcert={}", setup.ca_file),
            ),
            true,
        ),
        // require with a root file checks the chain, as libpq does.
        (
            setup.url(
                "127.0.0.1",
                &format!("sslmode=require&sslrootcert={}", setup.stranger_ca_file),
            ),
            false,
        ),
        // Another CA's roots: refused by name and by chain alike.
        (
            setup.verify_full("localhost", &setup.stranger_ca_file),
            false,
        ),
        (
            setup.url(
                "localhost",
                &format!("sslmode=verify-ca&sslrootcert={}", setup.stranger_ca_file),
            ),
            false,
        ),
        // The system's roots do not hold the throwaway CA.
        (
            setup.url("localhost", "sslmode=verify-full&sslrootcert=system"),
            false,
        ),
    ];
    for (url, expected) in &cases {
        let onshi = onshi_connects(url).await;
        let libpq = psql_connects(url);
        assert_eq!(onshi.is_ok(), *expected, "onshi on {url}: {onshi:?}");
        assert_eq!(libpq.is_ok(), *expected, "psql on {url}: {libpq:?}");
        if *expected {
            assert_eq!(onshi, Ok(true), "onshi on {url} is over TLS");
            assert_eq!(libpq, Ok(true), "psql on {url} is over TLS");
        }
    }
    let refused = onshi_connects(&setup.verify_full("127.0.0.1", &setup.ca_file))
        .await
        .unwrap_err();
    assert!(refused.contains("certificate"), "{refused}");
}

/// The whole service on verify-full: migrations as the owner, the pool, the audit lanes and the
/// notification session as the application role, every one of them over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_on_verify_full() {
    let setup = Setup::new().await;
    let server_url = setup.verify_full("localhost", &setup.ca_file);
    let app = spawn_app_on(&server_url, |_| {}).await;
    app.load(
        &Csv::new()
            .acquire(1, (INSURER, "12", "3456", "01"), "1980-04-01", "2020-04-01")
            .build(),
    )
    .await;
    let desk = app.party(Role::Facility, &[]).await;
    let (status, body) = status_and_json(
        app.http
            .post(format!("{}/v1/eligibility", app.address))
            .bearer_auth(&desk)
            .json(&json!({
                "insurer_number": INSURER, "symbol": "12", "number": "3456", "branch": "01",
                "birth_date": "1980-04-01", "date_of_care": "2024-06-01"
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["validity"], 1, "{body}");

    let db = app.db().await;
    let sessions: Vec<(String, bool)> = db
        .query(
            "select a.usename::text, s.ssl from pg_stat_activity a
               join pg_stat_ssl s using (pid)
              where a.datname = current_database() and a.backend_type = 'client backend'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(
        sessions.iter().any(|(user, _)| user == "onshi_app"),
        "the server's sessions are there: {sessions:?}"
    );
    assert!(sessions.iter().all(|(_, ssl)| *ssl), "{sessions:?}");
    let report = crate::audit::verify(&app).await;
    assert!(report.problems.is_empty(), "{report:?}");
}

/// A server whose database certificate does not verify never starts serving: it fails at
/// start rather than answering from a database it cannot trust.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_certificate_that_does_not_verify_stops_the_start() {
    let setup = Setup::new().await;
    let url = on_database(
        &setup.verify_full("localhost", &setup.stranger_ca_file),
        "postgres",
    );
    let audit_key = setup.dir.join("audit.key");
    onshi::secret_file::write_new(&audit_key, crate::helpers::TEST_AUDIT_KEY.as_bytes()).unwrap();
    let link_key = setup.dir.join("link.key");
    onshi::secret_file::write_new(&link_key, "5a".repeat(32).as_bytes()).unwrap();
    let mut settings = onshi::config::Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: url.clone(),
        migration_database_url: Some(url),
        link_key_file: Some(link_key),
        ..onshi::config::Settings::default()
    };
    settings.proof.key_file = Some(audit_key.clone());
    settings.audit.key_file = Some(audit_key);
    settings.audit.witness_dir = Some(setup.dir.join("witness"));
    let error = match onshi::startup::Application::build(&settings).await {
        Ok(_) => panic!("the server started on a database it cannot verify"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("certificate"), "{error}");
}
