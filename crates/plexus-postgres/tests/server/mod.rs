//! A PostgreSQL server a test starts on a free loopback port with a data
//! directory of its own (initdb, trust authentication), and restarts on
//! the same directory and port: stopped in `immediate` mode (no shutdown
//! checkpoint, crash recovery at the next start: as good as a crash) or
//! in `fast` mode (a clean shutdown), then started again.
//!
//! The server runs with `fsync=off`: a commit still waits until its WAL
//! is written (to the kernel), which is what survives the server process
//! dying, the only crash these tests cause; the machine never loses
//! power mid-test. (With fsync on, every acknowledgement of the
//! scenarios waits for a disk flush and `reconnect`'s 10,000 take a
//! minute.)
//!
//! PostgreSQL refuses to run as root; as root, its programs run as the
//! `postgres` user (`runuser`), in a directory that user owns.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// How long starting may take, seconds (`pg_ctl -t`).
const STARTUP_SECS: &str = "60";

pub struct PrivateServer {
    bin: PathBuf,
    /// Holds `data/` and the socket.
    dir: tempfile::TempDir,
    port: u16,
    /// As root: run the programs as this user.
    user: Option<String>,
}

impl PrivateServer {
    /// Makes a cluster and starts it; the error says why not.
    pub async fn start() -> Result<Self, String> {
        tokio::task::spawn_blocking(Self::start_blocking)
            .await
            .map_err(|e| format!("starting a private PostgreSQL: {e}"))?
    }

    fn start_blocking() -> Result<Self, String> {
        let bin = bin_dir().ok_or(
            "no PostgreSQL server programs (initdb, pg_ctl): set PLEXUS_POSTGRES_BIN or install Debian's postgresql",
        )?;
        let root = is_root()?;
        let user = root.then(|| "postgres".to_owned());
        let dir = tempfile::Builder::new()
            .prefix("plexus-postgres-server")
            .tempdir()
            .map_err(|e| format!("a data directory: {e}"))?;
        if let Some(user) = &user {
            let owned = Command::new("chown")
                .arg(user)
                .arg(dir.path())
                .status()
                .map_err(|e| format!("chown {user} {}: {e}", dir.path().display()))?;
            if !owned.success() {
                return Err(format!(
                    "chown {user} {} failed: {owned}",
                    dir.path().display()
                ));
            }
        }
        let port = plexus_conformance::port::free_port()?
            .local_addr()
            .map_err(|e| format!("finding a free port: {e}"))?
            .port();
        let server = PrivateServer {
            bin,
            dir,
            port,
            user,
        };
        let data = server.data();
        server.run(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        )?;
        server.pg_ctl_start()?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server in `immediate` mode (a crash, for what was
    /// committed) and starts it again.
    pub async fn crash_and_restart(&self) -> Result<(), String> {
        self.restart("immediate").await
    }

    /// Stops the server cleanly (`fast` mode) and starts it again.
    pub async fn stop_and_restart(&self) -> Result<(), String> {
        self.restart("fast").await
    }

    async fn restart(&self, mode: &str) -> Result<(), String> {
        let data = self.data();
        tokio::task::block_in_place(|| {
            self.run("pg_ctl", &["stop", "-D", &data, "-m", mode, "-w"])?;
            self.pg_ctl_start()
        })
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let data = self.data();
        let socket = self.dir.path().display().to_string();
        let log = self.dir.path().join("server.log").display().to_string();
        let options = format!(
            "-p {} -k {socket} -c listen_addresses=127.0.0.1 -c shared_buffers=16MB -c max_connections=60 -c fsync=off",
            self.port
        );
        self.run(
            "pg_ctl",
            &[
                "start",
                "-D",
                &data,
                "-w",
                "-t",
                STARTUP_SECS,
                "-l",
                &log,
                "-o",
                &options,
            ],
        )
        .map_err(|e| {
            let log =
                std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
            format!("{e}\nserver log:\n{log}")
        })
    }

    /// Runs one of the server's programs (as the server's user), failing
    /// with its output.
    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let path = self.bin.join(program);
        let mut command = match &self.user {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(&path);
                command
            }
            None => Command::new(&path),
        };
        let output: Output = command
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running {}: {e}", path.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} {} failed ({}): {}{}",
                path.display(),
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.run("pg_ctl", &["stop", "-D", &data, "-m", "immediate", "-w"]);
    }
}

fn is_root() -> Result<bool, String> {
    let output = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| format!("running id -u: {e}"))?;
    Ok(String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// `PLEXUS_POSTGRES_BIN`, else the newest `/usr/lib/postgresql/*/bin`.
fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PLEXUS_POSTGRES_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|bin| Path::new(bin).join("initdb").exists())
        .collect();
    found.sort_by_key(|bin| {
        bin.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop()
}
