//! A private PostgreSQL server that a test or a fault benchmark starts,
//! stops and restarts as it likes (never the shared one on 5432): `initdb`
//! into a temporary directory, `pg_ctl` on a free loopback port, optionally
//! with TLS (a certificate and key given by the caller).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Why the private server could not be made or driven.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("PostgreSQL's programs were not found (set HORIZON_PG_BIN or install them under /usr/lib/postgresql/*/bin)")]
    NotInstalled,
    #[error("{0}: {1}")]
    Io(&'static str, std::io::Error),
    #[error("{program} {args} failed: {output}")]
    Failed {
        program: String,
        args: String,
        output: String,
    },
}

/// The directory of `initdb` and `pg_ctl`: `HORIZON_PG_BIN`, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian's layout).
pub fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("HORIZON_PG_BIN") {
        return Some(PathBuf::from(dir)).filter(|d| d.join("initdb").exists());
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// A server certificate chain and its key, PEM, for `ssl=on`.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A PostgreSQL server of its own in a temporary directory, on a free port;
/// stopped and removed when dropped.
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// PostgreSQL refuses to run as root: then every command runs as the
    /// `postgres` user.
    as_postgres: bool,
}

impl PrivatePostgres {
    /// Creates and starts the server; `None` (after a loud skip line) when
    /// PostgreSQL's programs are not installed, unless services are required.
    /// Panics when the server cannot be made although they are.
    pub fn start(test: &str) -> Option<Self> {
        Self::start_for_test(test, None)
    }

    /// [`Self::start`] with TLS on (`ssl=on` with this certificate and key)
    /// and required: `pg_hba.conf` admits TCP connections over TLS only.
    pub fn start_with_tls(test: &str, tls: &ServerTls) -> Option<Self> {
        Self::start_for_test(test, Some(tls))
    }

    fn start_for_test(test: &str, tls: Option<&ServerTls>) -> Option<Self> {
        match Self::try_start(tls) {
            Ok(pg) => Some(pg),
            Err(PgError::NotInstalled) => {
                crate::skip(test, &PgError::NotInstalled.to_string());
                None
            }
            Err(e) => panic!("{test}: cannot start a private PostgreSQL: {e}"),
        }
    }

    /// Creates and starts the server.
    pub fn try_start(tls: Option<&ServerTls>) -> Result<Self, PgError> {
        let bin = bin_dir().ok_or(PgError::NotInstalled)?;
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let dir = tempfile::tempdir().map_err(|e| PgError::Io("temp dir", e))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| PgError::Io("a free port", e))?
            .port();
        let pg = Self {
            bin,
            dir,
            port,
            as_postgres,
        };
        pg.give_to_server(pg.dir.path())?;
        pg.run(
            "initdb",
            &[
                "-D",
                &pg.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        if let Some(tls) = tls {
            pg.configure_tls(tls)?;
        }
        pg.try_start_server()?;
        Ok(pg)
    }

    /// Writes the certificate and key into the data directory (the key
    /// readable by the server only, as PostgreSQL demands) and turns TLS on
    /// in `postgresql.conf`.
    fn configure_tls(&self, tls: &ServerTls) -> Result<(), PgError> {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let data = self.dir.path().join("data");
        let write = |name: &str, text: &str, mode: u32| -> Result<(), PgError> {
            let path = data.join(name);
            std::fs::write(&path, text).map_err(|e| PgError::Io("write a TLS file", e))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| PgError::Io("chmod a TLS file", e))?;
            self.give_to_server(&path)
        };
        write("server.crt", &tls.cert_pem, 0o644)?;
        write("server.key", &tls.key_pem, 0o600)?;
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .map_err(|e| PgError::Io("open postgresql.conf", e))?;
        writeln!(
            conf,
            "\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'"
        )
        .map_err(|e| PgError::Io("write postgresql.conf", e))?;
        // TCP connections over TLS only: a connection that succeeds was
        // encrypted.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
        )
        .map_err(|e| PgError::Io("write pg_hba.conf", e))
    }

    /// Hands `path` (recursively) to the `postgres` user when we are root.
    fn give_to_server(&self, path: &Path) -> Result<(), PgError> {
        if !self.as_postgres {
            return Ok(());
        }
        let out = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(path)
            .output()
            .map_err(|e| PgError::Io("chown", e))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(PgError::Failed {
                program: "chown".into(),
                args: path.display().to_string(),
                output: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }

    /// e.g. `postgres://postgres@127.0.0.1:PORT/postgres`
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<(), PgError> {
        let out = self
            .command(program)
            .args(args)
            .output()
            .map_err(|e| PgError::Io("run a PostgreSQL program", e))?;
        if out.status.success() {
            return Ok(());
        }
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        Err(PgError::Failed {
            program: program.into(),
            args: args.join(" "),
            output: format!(
                "{}{}{log}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }

    /// Starts the server and waits until it accepts connections.
    pub fn try_start_server(&self) -> Result<(), PgError> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        let log = self.log().display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        )
    }

    /// Stops the server the way an administrator's restart does (`-m fast`:
    /// open sessions are terminated).
    pub fn try_stop_server(&self) -> Result<(), PgError> {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"])
    }

    /// [`Self::try_start_server`], panicking on failure (for tests).
    pub fn start_server(&self) {
        self.try_start_server()
            .expect("start the private PostgreSQL");
    }

    /// [`Self::try_stop_server`], panicking on failure (for tests).
    pub fn stop_server(&self) {
        self.try_stop_server().expect("stop the private PostgreSQL");
    }

    /// Stops the server, leaves it down for `down`, starts it again.
    pub fn restart(&self, down: Duration) {
        self.stop_server();
        std::thread::sleep(down);
        self.start_server();
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", data.as_str(), "-m", "immediate", "stop"])
            .output();
    }
}
