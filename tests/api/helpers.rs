//! `spawn_app()`: the real server on a random port against a fresh database, dropped afterwards.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use onshi::config::Settings;
use onshi::domain::{FacilityCode, InsurerNumber};
use onshi::parties::{NewParty, Role, Token};
use onshi::startup::Application;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// The PostgreSQL server the tests create their databases on (`ops/test` sets it).
pub fn pg_server() -> String {
    std::env::var("ONSHI_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// `server` (a URL without a database, perhaps with settings such as `?sslmode=...`) naming
/// the database `database`.
pub fn on_database(server: &str, database: &str) -> String {
    match server.split_once('?') {
        Some((base, query)) => format!("{base}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

/// The audit key of every test server (hex): tests that tamper with the chain know it, as an
/// insider holding the key would.
pub const TEST_AUDIT_KEY: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";

/// The proof key of every test server (hex): its signing pair derives from it.
pub const TEST_PROOF_KEY: &str = "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf";

pub const FACILITY_CODE: &str = "0110113719";
pub const INSURER: &str = "33120015";
pub const OTHER_INSURER: &str = "06130017";
pub const FOREIGN_INSURER: &str = "01130012";

pub struct TestApp {
    pub address: String,
    /// The PostgreSQL server's URL, without a database.
    pub server: String,
    /// The schema owner's URL (migrations, and tests acting as the owner).
    pub database_url: String,
    /// The application role's URL, as the server connects.
    pub app_database_url: String,
    pub db_name: String,
    pub link_key_file: std::path::PathBuf,
    pub audit_key_file: std::path::PathBuf,
    /// The key file the proofs' signing pair derives from.
    pub proof_key_file: std::path::PathBuf,
    pub witness_dir: std::path::PathBuf,
    /// The server's audit log, to checkpoint it on demand.
    pub audit: onshi::audit::AuditLog,
    pub http: reqwest::Client,
    pub proxy: Option<DbProxy>,
    /// The server's clock: a test moves it forward to let hours pass.
    pub clock: onshi::clock::Clock,
}

/// The role the server connects as; `spawn_app` lets it log in (the migrations create it without).
pub const APP_ROLE: &str = "onshi_app";

/// `url` with its user replaced by `role` (no password: the test server trusts local clients).
pub fn as_role(url: &str, role: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{role}@{host}")
}

/// Creates the application role with LOGIN once per test process. Roles are cluster-wide and
/// other test processes may do this at the same moment: a concurrent creation or change is
/// retried, never an error.
async fn ensure_app_role_can_log_in() {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_init(|| app_role_login(pg_server())).await;
}

/// Gives `onshi_app` LOGIN on the server at `server` (roles are the server's, not a database's;
/// retried, as parallel tests may race to create it).
async fn app_role_login(server: String) {
    let admin = onshi::store::connect(&on_database(&server, "postgres"))
        .await
        .expect("the test PostgreSQL must be reachable: run the tests with ops/test");
    for _ in 0..50 {
        let done = admin
            .batch_execute(
                "do $$ begin
                     if not exists (select 1 from pg_roles where rolname = 'onshi_app') then
                         create role onshi_app login;
                     elsif not (select rolcanlogin from pg_roles where rolname = 'onshi_app') then
                         alter role onshi_app login;
                     end if;
                 end $$",
            )
            .await;
        if done.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("could not give the role onshi_app LOGIN");
}

pub async fn spawn_app() -> TestApp {
    spawn(false, |_| {}).await
}

/// Like [`spawn_app_with`], on the PostgreSQL server at `server` (a URL without a database).
pub async fn spawn_app_on(server: &str, configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_on(server, false, configure).await
}

/// Like [`spawn_app`], with the JPKI trust store (and CRLs) read from `pki_dir`.
pub async fn spawn_app_with_pki(pki_dir: &std::path::Path) -> TestApp {
    spawn(false, |settings| {
        settings.jpki_trust_dir = Some(pki_dir.to_path_buf());
        settings.jpki_crl_dir = Some(pki_dir.to_path_buf());
    })
    .await
}

/// Like [`spawn_app`], with the settings adjusted by `configure` before the app is built. When
/// `configure` sets `tls.cert_file`, the address is `https://`; the test then sets `http` to a
/// client that trusts its CA.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn(false, configure).await
}

/// Like [`spawn_app`], but the server reaches the database through a proxy the test can cut.
pub async fn spawn_app_behind_proxy() -> TestApp {
    spawn(true, |_| {}).await
}

async fn spawn(behind_proxy: bool, configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_on(&pg_server(), behind_proxy, configure).await
}

async fn spawn_on(
    server: &str,
    behind_proxy: bool,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    // Logs only when asked for (RUST_LOG=...), to keep test output readable.
    if std::env::var_os("RUST_LOG").is_some() {
        onshi::telemetry::init(onshi::config::LogFormat::Text);
    }
    if server == pg_server() {
        ensure_app_role_can_log_in().await;
    } else {
        app_role_login(server.to_owned()).await;
    }
    let db_name = format!("onshi_test_{}", uuid::Uuid::new_v4().simple());
    let admin = onshi::store::connect(&on_database(server, "postgres"))
        .await
        .expect("the test PostgreSQL must be reachable: run the tests with ops/test");
    admin
        .batch_execute(&format!("create database {db_name}"))
        .await
        .unwrap();
    let database_url = on_database(server, &db_name);
    let proxy = if behind_proxy {
        Some(DbProxy::start(server).await)
    } else {
        None
    };
    let app_db_url = match &proxy {
        Some(p) => format!("postgres://{APP_ROLE}@{}/{db_name}", p.addr),
        None => as_role(&database_url, APP_ROLE),
    };
    let link_key_file = std::env::temp_dir().join(format!("{db_name}.key"));
    onshi::secret_file::write_new(&link_key_file, "5a".repeat(32).as_bytes()).unwrap();
    let audit_key_file = std::env::temp_dir().join(format!("{db_name}.audit-key"));
    onshi::secret_file::write_new(&audit_key_file, TEST_AUDIT_KEY.as_bytes()).unwrap();
    let witness_dir = std::env::temp_dir().join(format!("{db_name}.witness"));
    let proof_key_file = std::env::temp_dir().join(format!("{db_name}.proof-key"));
    onshi::secret_file::write_new(&proof_key_file, TEST_PROOF_KEY.as_bytes()).unwrap();
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: app_db_url.clone(),
        migration_database_url: Some(database_url.clone()),
        pool_size: std::num::NonZeroUsize::new(4).unwrap(),
        link_key_file: Some(link_key_file.clone()),
        auth_cache_seconds: std::time::Duration::ZERO,
        ..Settings::default()
    };
    settings.audit.key_file = Some(audit_key_file.clone());
    settings.audit.witness_dir = Some(witness_dir.clone());
    settings.proof.key_file = Some(proof_key_file.clone());
    configure(&mut settings);
    let clock = onshi::clock::Clock::system();
    let app = Application::build_with_clock(&settings, clock.clone())
        .await
        .expect("the app builds");
    let audit = app.audit();
    let scheme = if settings.tls.cert_file.is_some() {
        "https"
    } else {
        "http"
    };
    let address = format!("{scheme}://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        server: server.to_owned(),
        database_url,
        app_database_url: app_db_url,
        db_name,
        link_key_file,
        audit_key_file,
        proof_key_file,
        witness_dir,
        audit,
        http: reqwest::Client::new(),
        clock,
        proxy,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let name = self.db_name.clone();
        let server = self.server.clone();
        let _ = std::fs::remove_file(&self.link_key_file);
        let _ = std::fs::remove_file(&self.audit_key_file);
        let _ = std::fs::remove_file(&self.proof_key_file);
        let _ = std::fs::remove_dir_all(&self.witness_dir);
        // Drop runs outside async context: a thread with its own runtime drops the database.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for cleanup");
            rt.block_on(async {
                if let Ok(admin) = onshi::store::connect(&on_database(&server, "postgres")).await {
                    let _ = admin
                        .batch_execute(&format!("drop database if exists {name} with (force)"))
                        .await;
                }
            });
        })
        .join();
    }
}

impl TestApp {
    /// Starts another server on this app's database (as a second onshi process would be),
    /// with the settings adjusted by `configure`; returns its address.
    pub async fn another_server(&self, configure: impl FnOnce(&mut Settings)) -> String {
        let mut settings = Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
            database_url: self.app_database_url.clone(),
            migration_database_url: Some(self.database_url.clone()),
            pool_size: std::num::NonZeroUsize::new(4).unwrap(),
            link_key_file: Some(self.link_key_file.clone()),
            auth_cache_seconds: std::time::Duration::ZERO,
            ..Settings::default()
        };
        settings.audit.key_file = Some(self.audit_key_file.clone());
        settings.audit.witness_dir = Some(self.witness_dir.clone());
        settings.proof.key_file = Some(self.proof_key_file.clone());
        configure(&mut settings);
        let app = Application::build(&settings).await.expect("the app builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        address
    }

    /// A session as the schema owner.
    pub async fn db(&self) -> tokio_postgres::Client {
        onshi::store::connect(&self.database_url).await.unwrap()
    }

    /// A session as the application role, with the server's rights.
    pub async fn app_db(&self) -> tokio_postgres::Client {
        onshi::store::connect(&as_role(&self.database_url, APP_ROLE))
            .await
            .unwrap()
    }

    /// Registers a party and returns its token.
    pub async fn party(&self, role: Role, insurer_numbers: &[&str]) -> String {
        let party = NewParty {
            role,
            name: Some(format!("test {}", role.as_str())),
            facility_code: (role == Role::Facility)
                .then(|| FacilityCode::parse(FACILITY_CODE).unwrap()),
            insurer_numbers: insurer_numbers
                .iter()
                .filter(|_| role != Role::Payer)
                .map(|n| InsurerNumber::parse(n).unwrap())
                .collect(),
            // A payer's numbers are given where an insurer's are.
            payer_numbers: insurer_numbers
                .iter()
                .filter(|_| role == Role::Payer)
                .map(|n| onshi::domain::PublicExpensePayerNumber::parse(n).unwrap())
                .collect(),
            expires_at: None,
            client_certificates: Vec::new(),
        };
        let token = Token::generate();
        let mut db = self.db().await;
        onshi::parties::register(&mut db, &party, &token)
            .await
            .unwrap();
        token.reveal().to_owned()
    }

    pub async fn post_json(
        &self,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        let response = self
            .http
            .post(format!("{}{path}", self.address))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        crate::contract::checked("POST", response).await
    }

    /// POSTs `body` as JSON with the token; the answer's status and JSON body.
    pub async fn call(
        &self,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        status_and_json(self.post_json(path, token, body).await).await
    }

    /// GETs `path` without a token.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        let response = self
            .http
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap();
        crate::contract::checked("GET", response).await
    }

    /// Sends `request` (built on [`TestApp::http`]); the answer, checked against the
    /// description.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> reqwest::Response {
        let (client, request) = request.build_split();
        let request = request.expect("a well-formed request");
        let method = request.method().as_str().to_owned();
        let response = client.execute(request).await.unwrap();
        crate::contract::checked(&method, response).await
    }

    pub async fn upload(
        &self,
        token: &str,
        batch_id: &str,
        csv: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let response = self
            .http
            .post(format!("{}/v1/enrollments", self.address))
            .bearer_auth(token)
            .header("Content-Type", "text/csv")
            .header("Idempotency-Key", batch_id)
            .body(csv)
            .send()
            .await
            .unwrap();
        crate::contract::checked("POST", response).await
    }

    /// Uploads as a fresh insurer owning both test insurer numbers; asserts it was applied.
    pub async fn load(&self, csv: &str) {
        let token = self.party(Role::Insurer, &[INSURER, OTHER_INSURER]).await;
        let response = self
            .upload(&token, &uuid::Uuid::new_v4().to_string(), csv.to_owned())
            .await;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(status, 200, "load failed: {body:#}");
    }

    /// The first column of every row `sql` selects, in its order.
    pub async fn column<T: for<'a> tokio_postgres::types::FromSql<'a>>(&self, sql: &str) -> Vec<T> {
        self.db()
            .await
            .query(sql, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// The kinds of every disclosure recorded, oldest first.
    pub async fn disclosure_kinds(&self) -> Vec<String> {
        self.column("select kind from disclosures order by id")
            .await
    }

    pub async fn count(&self, table: &str) -> i64 {
        self.db()
            .await
            .query_one(&format!("select count(*) from {table}"), &[])
            .await
            .unwrap()
            .get(0)
    }
}

/// The status of an answer and its body, which must be JSON.
pub async fn status_and_json(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// A checksum-valid synthetic My Number from a counter.
pub fn my_number(n: u64) -> String {
    let body = format!("{:011}", 90_000_000_000 + n);
    let digits: [u8; 11] = body.as_bytes().try_into().unwrap();
    let check = onshi::domain::check_digit::my_number(&digits);
    format!("{body}{check}")
}

/// Builds enrolment CSV files line by line with the full header.
pub struct Csv {
    lines: Vec<String>,
}

pub const HEADER: &str = "change,individual_number,insurer_number,insurer_name,symbol,number,branch,card_classification,relationship,insured_name,name,name_kana,sex,birth_date,postcode,address,acquired_on,lost_on,loss_reason,effective_on,copay_ratio,card_issued_on,card_valid_from,card_valid_to,elderly_copay_ratio,elderly_valid_from,elderly_valid_to,limit_classification,limit_category,limit_valid_from,limit_valid_to,specific_disease,specific_disease_valid_from,specific_disease_valid_to,specific_disease_self_pay";

impl Csv {
    pub fn new() -> Self {
        Csv {
            lines: vec![HEADER.to_owned()],
        }
    }

    /// A line with the given columns set and the others empty.
    pub fn row(mut self, cells: &[(&str, &str)]) -> Self {
        for (column, _) in cells {
            assert!(
                HEADER.split(',').any(|c| c == *column),
                "{column} is not a column of HEADER"
            );
        }
        let line: Vec<String> = HEADER
            .split(',')
            .map(|col| {
                cells
                    .iter()
                    .find(|(c, _)| *c == col)
                    .map(|(_, v)| v.to_string())
                    .unwrap_or_default()
            })
            .collect();
        self.lines.push(line.join(","));
        self
    }

    pub fn acquire(
        self,
        person: u64,
        key: (&str, &str, &str, &str),
        birth: &str,
        acquired: &str,
    ) -> Self {
        self.acquire_with(person, key, birth, acquired, &[])
    }

    /// [`Csv::acquire`] with more columns set.
    pub fn acquire_with(
        self,
        person: u64,
        key: (&str, &str, &str, &str),
        birth: &str,
        acquired: &str,
        more: &[(&str, &str)],
    ) -> Self {
        let mn = my_number(person);
        let mut cells = vec![
            ("change", "acquire"),
            ("individual_number", &mn),
            ("insurer_number", key.0),
            ("insurer_name", "架空健康保険組合"),
            ("symbol", key.1),
            ("number", key.2),
            ("branch", key.3),
            ("card_classification", "01"),
            ("relationship", "1"),
            ("insured_name", "架空 太郎"),
            ("name", "架空 太郎"),
            ("name_kana", "カクウ タロウ"),
            ("sex", "1"),
            ("birth_date", birth),
            ("postcode", "100-0001"),
            ("address", "東京都架空区緑町1-2-3"),
            ("acquired_on", acquired),
            ("copay_ratio", "030"),
            ("card_valid_from", acquired),
        ];
        cells.extend_from_slice(more);
        self.row(&cells)
    }

    pub fn lose(self, key: (&str, &str, &str, &str), lost: &str, reason: &str) -> Self {
        self.row(&[
            ("change", "lose"),
            ("insurer_number", key.0),
            ("symbol", key.1),
            ("number", key.2),
            ("branch", key.3),
            ("lost_on", lost),
            ("loss_reason", reason),
        ])
    }

    pub fn build(&self) -> String {
        let mut s = self.lines.join("\n");
        s.push('\n');
        s
    }
}

/// A TCP proxy in front of PostgreSQL that a test can cut (closing every connection and
/// refusing new ones) and restore, to see the server fail cleanly and recover.
pub struct DbProxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
}

impl DbProxy {
    async fn start(upstream_url: &str) -> Self {
        let upstream = upstream_url
            .rsplit('@')
            .next()
            .unwrap()
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let connections: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (up2, conns2) = (up.clone(), connections.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns2.lock().unwrap().push(task.abort_handle());
            }
        });
        DbProxy {
            addr,
            up,
            connections,
        }
    }

    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.connections.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// A loopback port free at the moment of asking (for a process the test starts).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The URL of a loopback port nothing listens on: bound, noted, closed.
pub fn closed_port_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}
