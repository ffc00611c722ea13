//! Python's confluent-kafka as the conformance suite's foreign client
//! (`tests/python/kafka_interop.py`), speaking the CloudEvents Kafka
//! binding in binary content mode on its own.
//!
//! The interpreter is `$PLEXUS_PYTHON`, else `<repo>/.venv/bin/python`,
//! else `python3`; `.ci/run` installs confluent-kafka into the venv
//! (`tests/python/requirements.txt`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use plexus_conformance::{ForeignClient, Reading};
use plexus_core::bus::{BoxFuture, BusError};
use plexus_core::message::{format_time, parse_time};
use plexus_core::{Message, MessageParts};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const NAME: &str = "Python confluent-kafka";

/// The Python client on `brokers`, making missing topics with
/// `partitions` partitions.
pub struct PythonKafka {
    python: OsString,
    script: PathBuf,
    brokers: String,
    partitions: i32,
}

impl PythonKafka {
    /// The client, or why it cannot run here.
    pub async fn find(brokers: &str, partitions: i32) -> Result<Self, String> {
        let python = python();
        let probe = Command::new(&python)
            .args(["-c", "import confluent_kafka"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .status()
            .await;
        match probe {
            Ok(status) if status.success() => Ok(PythonKafka {
                python,
                script: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/kafka_interop.py"),
                brokers: brokers.to_owned(),
                partitions,
            }),
            _ => Err(format!(
                "`{}` cannot import confluent_kafka; run .ci/run or: python3 -m venv .venv && \
                 .venv/bin/pip install -r crates/plexus-kafka/tests/python/requirements.txt",
                python.display()
            )),
        }
    }

    fn command(&self, mode: &str, topic: &str) -> Command {
        let mut command = Command::new(&self.python);
        command
            .arg(&self.script)
            .args([mode, &self.brokers, topic, &self.partitions.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }
}

fn failed(reason: impl std::fmt::Display) -> BusError {
    BusError::backend(NAME, reason)
}

impl ForeignClient for PythonKafka {
    fn name(&self) -> String {
        NAME.to_owned()
    }

    fn publish(
        &self,
        topic: &str,
        messages: Vec<Message>,
    ) -> BoxFuture<'static, Result<(), BusError>> {
        let mut command = self.command("publish", topic);
        command.stdin(Stdio::piped());
        Box::pin(async move {
            let mut child = command.spawn().map_err(failed)?;
            let mut stdin = child.stdin.take().expect("a piped stdin");
            for message in &messages {
                let line = format!("{}\n", event(message));
                stdin.write_all(line.as_bytes()).await.map_err(failed)?;
            }
            drop(stdin);
            let out = child.wait_with_output().await.map_err(failed)?;
            if !out.status.success() {
                return Err(failed(format!(
                    "publishing exited with {}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                )));
            }
            Ok(())
        })
    }

    fn read(&self, topic: &str, count: usize) -> BoxFuture<'static, Result<Reading, BusError>> {
        let mut command = self.command("read", topic);
        command.arg(count.to_string()).stdin(Stdio::null());
        Box::pin(async move {
            let mut child = command.spawn().map_err(failed)?;
            let stdout = child.stdout.take().expect("a piped stdout");
            let mut lines = BufReader::new(stdout).lines();
            match lines.next_line().await.map_err(failed)? {
                Some(line) if line == "ready" => {}
                other => {
                    let out = child.wait_with_output().await.map_err(failed)?;
                    return Err(failed(format!(
                        "subscribing printed {other:?}, then: {}",
                        String::from_utf8_lossy(&out.stderr)
                    )));
                }
            }
            let reading: Reading = Box::pin(async move {
                let mut read = Vec::with_capacity(count);
                while read.len() < count {
                    let Some(line) = lines.next_line().await.map_err(failed)? else {
                        let out = child.wait_with_output().await.map_err(failed)?;
                        return Err(failed(format!(
                            "reading ended after {} messages: {}",
                            read.len(),
                            String::from_utf8_lossy(&out.stderr)
                        )));
                    };
                    read.push(message(&line).map_err(failed)?);
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
