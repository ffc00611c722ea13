//! A RabbitMQ node that a test starts on free loopback ports with a data
//! directory of its own (no plugins), and restarts from the same data:
//! stopped (SIGTERM to the Erlang VM, which shuts the broker down
//! cleanly), then the same command again. Killed (SIGKILL to its process
//! group) when the test is done with it. The machine's own broker is
//! never touched.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{Instant, sleep};

/// How long a started node may take to accept connections (a cold start
/// takes about 8 s on these machines, a restart with queues to recover
/// longer).
const STARTUP: Duration = Duration::from_secs(90);

pub struct PrivateBroker {
    script: PathBuf,
    port: u16,
    dist_port: u16,
    dir: tempfile::TempDir,
    child: Mutex<Option<Child>>,
}

impl PrivateBroker {
    /// Starts a node; the error says why not (no RabbitMQ:
    /// `PLEXUS_RABBITMQ_SERVER`, or Debian's rabbitmq-server package).
    pub async fn start() -> Result<Self, String> {
        let script = script().ok_or(
            "no RabbitMQ server script (set PLEXUS_RABBITMQ_SERVER to rabbitmq-server's \
             /usr/lib/rabbitmq/bin/rabbitmq-server, or apt-get install rabbitmq-server)",
        )?;
        // Both ports are held until both are chosen, so they differ.
        let bind = plexus_conformance::port::free_port;
        let (first, second) = (bind()?, bind()?);
        let port_of = |listener: &std::net::TcpListener| {
            listener
                .local_addr()
                .map(|a| a.port())
                .map_err(|e| format!("a free port: {e}"))
        };
        let (port, dist_port) = (port_of(&first)?, port_of(&second)?);
        drop((first, second));
        let dir = tempfile::Builder::new()
            .prefix("plexus-rabbitmq-node")
            .tempdir()
            .map_err(|e| format!("a data directory: {e}"))?;
        let write = |name: &str, text: &str| {
            fs::write(dir.path().join(name), text).map_err(|e| format!("writing {name}: {e}"))
        };
        write("enabled_plugins", "[].\n")?;
        write(
            "rabbitmq.conf",
            "loopback_users = none\ndisk_free_limit.absolute = 1MB\n",
        )?;
        for sub in ["mnesia", "log"] {
            fs::create_dir_all(dir.path().join(sub)).map_err(|e| format!("{sub}: {e}"))?;
        }
        let broker = PrivateBroker {
            script,
            port,
            dist_port,
            dir,
            child: Mutex::new(None),
        };
        broker.spawn().await?;
        Ok(broker)
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Stops the node (SIGTERM to the Erlang VM, waiting for it to exit)
    /// and starts it again on the same ports and data.
    pub async fn stop_and_restart(&self) -> Result<(), String> {
        let child = self.child.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut child) = child {
            let pid_file = self.dir.path().join("pid");
            let vm = fs::read_to_string(&pid_file)
                .map_err(|e| format!("reading {}: {e}", pid_file.display()))?;
            signal("-TERM", vm.trim())?;
            let waited = tokio::task::spawn_blocking(move || child.wait())
                .await
                .map_err(|e| format!("waiting for the node to stop: {e}"))?;
            waited.map_err(|e| format!("waiting for the node to stop: {e}"))?;
        }
        self.until_closed().await?;
        self.spawn().await
    }

    /// Kills the node's process group; says so on stderr, with the end
    /// of its console, when the node had already stopped by itself.
    fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            if let Ok(Some(status)) = child.try_wait() {
                eprintln!(
                    "the RabbitMQ node on port {} had stopped by itself ({status}); its console ends:\n{}",
                    self.port,
                    self.console_tail()
                );
            }
            let _ = signal("-KILL", &format!("-{}", child.id()));
            let _ = child.wait();
        }
    }

    /// Waits until neither of the node's ports accepts connections. The
    /// process this handle waits for is the server script, not the Erlang
    /// VM that holds the ports (its child): a node started while an old VM
    /// still listened was taken as up at once, and could fail to bind.
    async fn until_closed(&self) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let amqp = TcpStream::connect(("127.0.0.1", self.port)).await.is_ok();
            let dist = TcpStream::connect(("127.0.0.1", self.dist_port))
                .await
                .is_ok();
            if !amqp && !dist {
                return Ok(());
            }
            if started.elapsed() > STARTUP {
                return Err(format!(
                    "the stopped RabbitMQ node still holds port {} or {} after {STARTUP:?}",
                    self.port, self.dist_port
                ));
            }
            sleep(Duration::from_millis(20)).await;
        }
    }

    /// The last lines of the node's console log.
    fn console_tail(&self) -> String {
        let console =
            fs::read_to_string(self.dir.path().join("log/console.log")).unwrap_or_default();
        let lines: Vec<&str> = console.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    async fn spawn(&self) -> Result<(), String> {
        let dir = self.dir.path();
        let log = fs::File::create(dir.join("log/console.log"))
            .map_err(|e| format!("the node's console log: {e}"))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("the console log: {e}"))?;
        let child = Command::new(&self.script)
            .env(
                "RABBITMQ_NODENAME",
                format!("plexus-test-{}@localhost", self.port),
            )
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_FEATURE_FLAGS_FILE", dir.join("feature_flags"))
            .env("RABBITMQ_PID_FILE", dir.join("pid"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.script.display()))?;
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).await.is_err() {
            let exited = self
                .child
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if let Some(status) = exited {
                return Err(format!(
                    "the RabbitMQ node on port {} stopped while starting ({status}); its console ends:\n{}",
                    self.port,
                    self.console_tail()
                ));
            }
            if started.elapsed() > STARTUP {
                return Err(format!(
                    "the RabbitMQ node did not accept connections on port {} within {STARTUP:?}; \
                     its console ends:\n{}",
                    self.port,
                    self.console_tail()
                ));
            }
            sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.kill();
        // A failing test keeps the node's data and logs, and shows the
        // errors its log holds.
        if std::thread::panicking() {
            self.dir.disable_cleanup(true);
            let log = self
                .dir
                .path()
                .join(format!("log/plexus-test-{}@localhost.log", self.port));
            let text = fs::read_to_string(&log).unwrap_or_default();
            let errors: Vec<&str> = text
                .lines()
                .filter(|line| line.contains("[error]") || line.contains("[warning]"))
                .collect();
            eprintln!(
                "the RabbitMQ node's data and logs are kept in {}; the last errors and warnings of {}:\n{}",
                self.dir.path().display(),
                log.display(),
                errors[errors.len().saturating_sub(20)..].join("\n")
            );
        }
    }
}

fn signal(signal: &str, target: &str) -> Result<(), String> {
    let status = Command::new("kill")
        .args([signal, "--", target])
        .status()
        .map_err(|e| format!("kill {signal} {target}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill {signal} {target} failed: {status}"))
    }
}

/// The server script that runs the node in the foreground as the calling
/// user: `$PLEXUS_RABBITMQ_SERVER`, else Debian's.
fn script() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PLEXUS_RABBITMQ_SERVER") {
        return Some(PathBuf::from(path));
    }
    let installed = PathBuf::from("/usr/lib/rabbitmq/bin/rabbitmq-server");
    installed.exists().then_some(installed)
}
