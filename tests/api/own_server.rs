//! A PostgreSQL cluster of a test's own, in a temporary directory: for tests that stop and start
//! the database, or that need it configured unlike the shared one (TLS with a test certificate).

use std::path::{Path, PathBuf};

/// A cluster owned by the system's `postgres` user when the tests run as root (initdb refuses
/// root), listening on 127.0.0.1 at a free port; removed on drop.
pub struct OwnServer {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// `postgres://postgres@127.0.0.1:PORT`, without a database.
    pub url: String,
    options: String,
}

/// The server certificate of a cluster that takes TLS sessions only.
pub struct ServerTls<'a> {
    pub cert_pem: &'a str,
    pub key_pem: &'a str,
}

impl OwnServer {
    /// A cluster with plain sessions, trusting local clients.
    pub async fn create() -> Option<OwnServer> {
        Self::create_with(None).await
    }

    /// A cluster that refuses any session not over TLS, with the given certificate.
    pub async fn create_with_tls(tls: ServerTls<'_>) -> Option<OwnServer> {
        Self::create_with(Some(tls)).await
    }

    async fn create_with(tls: Option<ServerTls<'_>>) -> Option<OwnServer> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("initdb").exists())
            .max()?;
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let dir = std::env::temp_dir().join(format!("onshi-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = OwnServer {
            url: format!("postgres://postgres@127.0.0.1:{port}"),
            dir,
            bin,
            port,
            options: String::new(),
        };
        server.chown();
        let data = server.data();
        assert!(server
            .run(
                "initdb",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8"
                ]
            )
            .success());
        if let Some(tls) = tls {
            server.require_tls(&tls);
        }
        server.start();
        Some(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Installs the certificate and lets TCP clients in over TLS only.
    fn require_tls(&mut self, tls: &ServerTls<'_>) {
        use std::os::unix::fs::PermissionsExt;
        let data = self.data();
        write(&data.join("server.crt"), tls.cert_pem, 0o644);
        write(&data.join("server.key"), tls.key_pem, 0o600);
        write(
            &data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostnossl all all 127.0.0.1/32 reject\n",
            0o600,
        );
        self.chown();
        let key = std::fs::metadata(data.join("server.key")).unwrap();
        assert_eq!(key.permissions().mode() & 0o777, 0o600);
        self.options = "-c ssl=on".into();
    }

    fn chown(&self) {
        if is_root() {
            let _ = std::process::Command::new("chown")
                .args(["-R", "postgres", self.dir.to_str().unwrap()])
                .status();
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> std::process::ExitStatus {
        let path = self.bin.join(program);
        let mut command = if is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--", path.to_str().unwrap()]);
            c
        } else {
            std::process::Command::new(path)
        };
        command
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
    }

    pub fn start(&self) {
        let data = self.data();
        let log = self.dir.join("server.log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off {}",
            self.port,
            self.dir.display(),
            self.options
        );
        let started = self
            .run(
                "pg_ctl",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-l",
                    log.to_str().unwrap(),
                    "-w",
                    "-o",
                    &options,
                    "start",
                ],
            )
            .success();
        assert!(
            started,
            "the test's PostgreSQL did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    pub fn stop(&self) {
        let data = self.data();
        assert!(self
            .run(
                "pg_ctl",
                &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"]
            )
            .success());
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

fn write(path: &Path, contents: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
