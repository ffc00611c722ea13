//! [`PythonClient`]: a backend's Python interop script as its
//! [`ForeignClient`].

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use plexus_core::bus::{BoxFuture, BusError};
use plexus_core::message::{format_time, parse_time};
use plexus_core::{Message, MessageParts};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use crate::{ForeignClient, Reading};

/// The arguments that follow the mode, for a topic.
type Args = dyn Fn(&str) -> Vec<String> + Send + Sync;

/// A Python script speaking the broker's CloudEvents binding with a
/// Python client library, as the suite's [`ForeignClient`].
///
/// The interpreter is `$PLEXUS_PYTHON`, else `<repo>/.venv/bin/python`,
/// else `python3`. The script is run as `SCRIPT MODE ARGS…`, where `ARGS`
/// are what the `args` given to [`find`](Self::find) make of the topic:
///
/// - `publish ARGS…` reads one JSON event a line from stdin and publishes
///   each; it exits with success once the broker accepted them all.
/// - `read ARGS… COUNT` prints `ready` once subscribed, then the first
///   `COUNT` messages it gets, one JSON event a line.
///
/// A JSON event has the CloudEvents attributes (`id`, `source`, `type`,
/// `subject`, `time`, `datacontenttype`), `partitionkey`, `headers` (an
/// object of strings) and the payload as `data_base64`.
pub struct PythonClient {
    name: Arc<str>,
    python: OsString,
    script: PathBuf,
    args: Box<Args>,
}

impl PythonClient {
    /// The client named `name` (e.g. `Python confluent-kafka`) running
    /// `script` with `args` (of the topic) after the mode, or why it
    /// cannot run here: the interpreter cannot import `module` (e.g.
    /// `confluent_kafka`). The reason says how to install it from
    /// `requirements`, a path relative to the repository root.
    pub async fn find(
        name: &str,
        module: &str,
        script: impl Into<PathBuf>,
        requirements: &str,
        args: impl Fn(&str) -> Vec<String> + Send + Sync + 'static,
    ) -> Result<Self, String> {
        let python = python();
        let probe = Command::new(&python)
            .args(["-c", &format!("import {module}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .status()
            .await;
        match probe {
            Ok(status) if status.success() => Ok(PythonClient {
                name: name.into(),
                python,
                script: script.into(),
                args: Box::new(args),
            }),
            _ => Err(format!(
                "`{}` cannot import {module}; run .ci/run or: python3 -m venv .venv && \
                 .venv/bin/pip install -r {requirements}",
                python.display()
            )),
        }
    }

    fn command(&self, mode: &str, topic: &str) -> Command {
        let mut command = Command::new(&self.python);
        command
            .arg(&self.script)
            .arg(mode)
            .args((self.args)(topic))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }
}

/// Makes a failure of the client `name` of an error, for `map_err`.
fn failed<E: Display>(name: &str) -> impl FnOnce(E) -> BusError + use<E> {
    let name = name.to_owned();
    move |reason| BusError::backend(name, reason)
}

impl ForeignClient for PythonClient {
    fn name(&self) -> String {
        self.name.to_string()
    }

    fn publish(
        &self,
        topic: &str,
        messages: Vec<Message>,
    ) -> BoxFuture<'static, Result<(), BusError>> {
        let mut command = self.command("publish", topic);
        command.stdin(Stdio::piped());
        let name = Arc::clone(&self.name);
        Box::pin(async move {
            let mut child = command.spawn().map_err(failed(&name))?;
            let mut stdin = child
                .stdin
                .take()
                .ok_or("no piped stdin")
                .map_err(failed(&name))?;
            for message in &messages {
                let line = format!("{}\n", event(message));
                stdin
                    .write_all(line.as_bytes())
                    .await
                    .map_err(failed(&name))?;
            }
            drop(stdin);
            let out = child.wait_with_output().await.map_err(failed(&name))?;
            if !out.status.success() {
                return Err(BusError::backend(
                    &*name,
                    format!(
                        "publishing exited with {}: {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr)
                    ),
                ));
            }
            Ok(())
        })
    }

    fn read(&self, topic: &str, count: usize) -> BoxFuture<'static, Result<Reading, BusError>> {
        let mut command = self.command("read", topic);
        command.arg(count.to_string()).stdin(Stdio::null());
        let name = Arc::clone(&self.name);
        Box::pin(async move {
            let mut child = command.spawn().map_err(failed(&name))?;
            let stdout = child
                .stdout
                .take()
                .ok_or("no piped stdout")
                .map_err(failed(&name))?;
            let mut lines = BufReader::new(stdout).lines();
            match lines.next_line().await.map_err(failed(&name))? {
                Some(line) if line == "ready" => {}
                other => {
                    let out = child.wait_with_output().await.map_err(failed(&name))?;
                    return Err(BusError::backend(
                        &*name,
                        format!(
                            "subscribing printed {other:?}, then: {}",
                            String::from_utf8_lossy(&out.stderr)
                        ),
                    ));
                }
            }
            let reading: Reading = Box::pin(async move {
                let mut read = Vec::with_capacity(count);
                while read.len() < count {
                    let Some(line) = lines.next_line().await.map_err(failed(&name))? else {
                        let out = child.wait_with_output().await.map_err(failed(&name))?;
                        return Err(BusError::backend(
                            &*name,
                            format!(
                                "reading ended after {} messages: {}",
                                read.len(),
                                String::from_utf8_lossy(&out.stderr)
                            ),
                        ));
                    };
                    read.push(message(&line).map_err(failed(&name))?);
                }
                let _ = child.wait().await;
                Ok(read)
            });
            Ok(reading)
        })
    }
}

/// A message as the script's JSON event line.
fn event(message: &Message) -> Value {
    json!({
        "id": message.id(),
        "source": message.source(),
        "type": message.ty(),
        "subject": message.subject(),
        "time": format_time(message.time()),
        "datacontenttype": message.data_content_type(),
        "partitionkey": message.key(),
        "headers": message.headers(),
        "data_base64": STANDARD.encode(message.payload()),
    })
}

/// The script's JSON event line as a message.
fn message(line: &str) -> Result<Message, String> {
    let event: Value = serde_json::from_str(line).map_err(|e| format!("`{line}`: {e}"))?;
    let text = |name: &str| event.get(name).and_then(Value::as_str).map(str::to_owned);
    let required = |name: &str| text(name).ok_or_else(|| format!("`{line}` has no {name}"));
    let headers: BTreeMap<String, String> = event
        .get("headers")
        .and_then(Value::as_object)
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let payload = STANDARD
        .decode(required("data_base64")?)
        .map_err(|e| format!("data_base64: {e}"))?;
    Message::from_parts(MessageParts {
        id: required("id")?,
        source: required("source")?,
        ty: required("type")?,
        subject: text("subject"),
        time: parse_time(&required("time")?).map_err(|e| e.to_string())?,
        data_content_type: text("datacontenttype"),
        key: text("partitionkey"),
        headers,
        payload: payload.into(),
    })
    .map_err(|e| e.to_string())
}

/// The repository's root: this crate is `<repo>/crates/plexus-conformance`.
fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// `$PLEXUS_PYTHON`, else the repository's venv, else `python3`.
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
