//! The JSON a bench writes: the machine it ran on, its settings, the floors
//! and every row.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde::Serialize;

use super::report::{Floors, Row};

/// The machine and build a bench ran on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Cores the process may use.
    pub cores: usize,
    /// CPU model, from `/proc/cpuinfo` where there is one.
    pub cpu_model: Option<String>,
    /// Operating system (`linux`, `macos`, …).
    pub os: &'static str,
    /// CPU architecture.
    pub arch: &'static str,
    /// `rustc --version` of the toolchain on `PATH`, when there is one.
    pub rustc: Option<String>,
    /// `release` or `debug`: how this `plexus` binary was built.
    pub build_profile: &'static str,
    /// The plexus version.
    pub plexus_version: &'static str,
    /// When the bench ran, seconds since the Unix epoch.
    pub timestamp_unix: u64,
}

impl Machine {
    /// Describes this machine and this build.
    pub fn detect() -> Self {
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model: cpu_model(),
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
            rustc: rustc_version(),
            build_profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            plexus_version: env!("CARGO_PKG_VERSION"),
            timestamp_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
}

fn rustc_version() -> Option<String> {
    let output = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The whole result of one bench run.
#[derive(Debug, Serialize)]
pub struct Document<S: Serialize> {
    /// The bench, e.g. `rpc`.
    pub bench: &'static str,
    /// What the plexus stack is measured against, e.g. `bare tonic`.
    pub baseline: &'static str,
    /// Where it ran.
    pub machine: Machine,
    /// The settings it ran with.
    pub settings: S,
    /// The floors plexus must clear.
    pub floors: Floors,
    /// Whether every row clears them.
    pub all_floors_hold: bool,
    /// One row per scenario and concurrency.
    pub scenarios: Vec<Row>,
}

/// Writes `document` as pretty JSON to `path`, creating its folder.
pub fn write_json<T: Serialize>(path: &Path, document: &T) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create the folder {} for the bench results",
                dir.display()
            )
        })?;
    }
    let mut json = serde_json::to_string_pretty(document)
        .context("cannot encode the bench results as JSON")?;
    json.push('\n');
    std::fs::write(path, json)
        .with_context(|| format!("cannot write the bench results to {}", path.display()))
}
