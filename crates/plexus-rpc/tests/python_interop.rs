//! A Python grpcio client against plexus servers: the four call kinds, a
//! deadline set in Python, and mutual TLS with a SPIFFE identity checked by
//! an authorization policy.
//!
//! The client is `tests/python/interop_client.py`; it compiles its stubs from
//! `proto/plexus/echo/v1/echo.proto` at run time with `grpc_tools.protoc`.
//! The interpreter is `$PLEXUS_PYTHON`, else `<repo>/.venv/bin/python`, else
//! `python3`. Without Python, grpcio or grpcio-tools the test prints one line
//! saying how to install them and passes, except with `CI=true`, where that
//! is a failure.

mod support;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use plexus_rpc::CallContext;
use plexus_rpc::Server;
use plexus_rpc::auth::{Identity, Policy};
use plexus_rpc::echo::EchoService;
use plexus_rpc::echo::v1::{EchoReply, EchoRequest};
use plexus_rpc::tls::ServerTls;
use support::certs::Ca;
use support::unary::{Unary, UnaryEcho};
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tonic::{Request, Response, Status};

/// Unary with this payload waits until the call is stopped (deadline or
/// cancellation); keep in step with `interop_client.py`.
const WAIT_FOR_DEADLINE: &[u8] = b"plexus-interop/wait-for-deadline";
/// Unary with this payload answers with the caller's principal.
const WHOAMI: &[u8] = b"plexus-interop/whoami";
/// The SPIFFE id in the Python client's certificate.
const PRINCIPAL: &str = "spiffe://shop/python";

/// How long the whole Python run may take before it is killed.
const SCRIPT_BOUND: Duration = Duration::from_secs(180);
/// How long the import check may take.
const PROBE_BOUND: Duration = Duration::from_secs(60);
/// How long a `WAIT_FOR_DEADLINE` handler waits at most if nothing stops it.
const HANDLER_WAIT_BOUND: Duration = Duration::from_secs(60);

const INSTALL_HINT: &str = "run .ci/run or: python3 -m venv .venv && \
    .venv/bin/pip install -r crates/plexus-rpc/tests/python/requirements.txt";

/// The stock unary echo plus the two special payloads (served with the stock
/// streaming methods).
#[derive(Clone, Default)]
struct InteropEcho {
    /// `WAIT_FOR_DEADLINE` handlers that ended (stopped or dropped).
    waits_ended: Arc<AtomicUsize>,
}

/// Counts a handler as ended when dropped, however it ends.
struct CountOnDrop(Arc<AtomicUsize>);

impl Drop for CountOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tonic::async_trait]
impl Unary for InteropEcho {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        let payload = request.get_ref().payload.clone();
        if payload.as_ref() == WAIT_FOR_DEADLINE {
            let _ended = CountOnDrop(self.waits_ended.clone());
            let ctx = CallContext::from_request(&request)
                .cloned()
                .ok_or_else(|| Status::internal("no call context on the request"))?;
            return match tokio::time::timeout(HANDLER_WAIT_BOUND, ctx.cancelled()).await {
                Ok(()) => Err(Status::cancelled("the call was stopped")),
                Err(_) => Err(Status::internal(
                    "the call's deadline never stopped this handler",
                )),
            };
        }
        if payload.as_ref() == WHOAMI {
            let principal = request
                .extensions()
                .get::<Identity>()
                .map_or("anonymous", Identity::principal);
            return Ok(Response::new(EchoReply {
                payload: principal.as_bytes().to_vec().into(),
                sequence: 0,
            }));
        }
        Unary::unary(&EchoService, request).await
    }
}

fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// `$PLEXUS_PYTHON`, else the repository's venv, else `python3` from `PATH`.
fn python() -> OsString {
    if let Some(python) = std::env::var_os("PLEXUS_PYTHON").filter(|p| !p.is_empty()) {
        return python;
    }
    let venv = repo_root().join(".venv/bin/python");
    if venv.exists() {
        return venv.into_os_string();
    }
    "python3".into()
}

/// Why the Python client cannot run here, if it cannot.
async fn missing_python_modules(python: &OsString) -> Option<String> {
    let probe = Command::new(python)
        .args(["-c", "import grpc, grpc_tools.protoc"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(PROBE_BOUND, probe).await {
        Err(_) => Some(format!(
            "`{}` did not import grpc within {PROBE_BOUND:?}",
            python.display()
        )),
        Ok(Err(e)) => Some(format!("cannot run `{}`: {e}", python.display())),
        Ok(Ok(out)) if !out.status.success() => Some(format!(
            "grpcio or grpcio-tools not installed for `{}` ({})",
            python.display(),
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("import failed")
        )),
        Ok(Ok(_)) => None,
    }
}

/// What the Python run printed and how it ended.
struct Run {
    status: Option<std::process::ExitStatus>,
    stdout: String,
    stderr: String,
}

/// Runs `command` for at most `bound`, killing it past that.
async fn run_bounded(mut command: Command, bound: Duration) -> Run {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the Python client");
    let mut out_pipe = child.stdout.take().expect("piped stdout");
    let mut err_pipe = child.stderr.take().expect("piped stderr");
    let stdout = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf).await;
        buf
    });
    let stderr = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf).await;
        buf
    });
    let status = match tokio::time::timeout(bound, child.wait()).await {
        Ok(status) => Some(status.expect("wait for the Python client")),
        Err(_) => {
            let _ = child.kill().await;
            None
        }
    };
    let collect = |task: tokio::task::JoinHandle<Vec<u8>>| async move {
        match tokio::time::timeout(Duration::from_secs(10), task).await {
            Ok(Ok(buf)) => String::from_utf8_lossy(&buf).into_owned(),
            _ => "(output not collected: the pipe stayed open)".to_owned(),
        }
    };
    Run {
        status,
        stdout: collect(stdout).await,
        stderr: collect(stderr).await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_client_interoperates() {
    let python = python();
    if let Some(reason) = missing_python_modules(&python).await {
        let line = format!("skipping python interop: {reason}; {INSTALL_HINT}");
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true and {line}"
        );
        // Straight to stderr, past the test harness's capture, so the skip is seen.
        let _ = writeln!(std::io::stderr(), "{line}");
        return;
    }

    let dir = tempfile::tempdir().expect("temporary directory");
    let ca = Ca::new("plexus python interop CA");
    let server_cert = ca.server();
    let client_cert = ca.client(PRINCIPAL);
    let write = |name: &str, pem: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).expect("write PEM");
        path
    };
    let ca_path = write("ca.pem", &ca.cert_pem);
    let cert_path = write("client.pem", &client_cert.cert_pem);
    let key_path = write("client.key", &client_cert.key_pem);
    let stubs = dir.path().join("stubs");
    std::fs::create_dir(&stubs).expect("stubs directory");

    let echo = InteropEcho::default();
    let plain = support::start(UnaryEcho(echo.clone())).await;
    let tls = ServerTls::from_pem(&server_cert.cert_pem, &server_cert.key_pem)
        .expect("server certificate")
        .client_ca_pem(&ca.cert_pem)
        .expect("client CA");
    let policy = Policy::default_deny()
        .allow("/plexus.echo.v1.Echo/Unary", [PRINCIPAL])
        .allow_anyone("/grpc.health.v1.Health/*");
    let secure = support::start_with(
        Server::builder().tls(tls).authorize(policy),
        UnaryEcho(echo.clone()),
    )
    .await;

    let mut command = Command::new(&python);
    command
        .arg(repo_root().join("crates/plexus-rpc/tests/python/interop_client.py"))
        .arg("--proto-root")
        .arg(repo_root().join("proto"))
        .arg("--stubs-dir")
        .arg(&stubs)
        .arg("--plaintext")
        .arg(plain.local_addr().to_string())
        .arg("--tls")
        .arg(secure.local_addr().to_string())
        .arg("--ca")
        .arg(&ca_path)
        .arg("--cert")
        .arg(&cert_path)
        .arg("--key")
        .arg(&key_path)
        .arg("--principal")
        .arg(PRINCIPAL)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    let run = run_bounded(command, SCRIPT_BOUND).await;
    let report = format!(
        "python client ({}):\n--- stdout\n{}--- stderr\n{}",
        python.display(),
        run.stdout,
        run.stderr
    );
    let status = run.status.unwrap_or_else(|| {
        panic!("the Python client ran past {SCRIPT_BOUND:?} and was killed\n{report}")
    });
    assert!(
        status.success(),
        "the Python client failed ({status})\n{report}"
    );
    println!("{report}");

    // The Python deadline check made one call that only its deadline could
    // end; the handler must have been stopped with it, not left running.
    let waits = echo.waits_ended.clone();
    let stopped =
        support::wait_until(Duration::from_secs(5), || waits.load(Ordering::SeqCst) == 1).await;
    assert!(
        stopped,
        "the server handler of the expired Python call was not stopped ({} ended)",
        echo.waits_ended.load(Ordering::SeqCst)
    );

    plain.shutdown().await.expect("stop plaintext server");
    secure.shutdown().await.expect("stop mTLS server");
}
