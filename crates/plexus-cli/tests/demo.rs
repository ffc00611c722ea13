//! `plexus demo` end to end: the built binary starts the shop, drives the
//! workload and reports every pattern; exit 0 means every invariant held.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a run may take, even on a loaded debug build.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// Every row of the report: pattern and the invariant it checks.
const ROWS: [(&str, &str); 12] = [
    ("gRPC unary", "every order readable back"),
    ("gRPC server streaming", "every stream ended DELIVERED"),
    ("gRPC client streaming", "500 imported = 500 readable"),
    ("gRPC bidi streaming", "every message answered in order"),
    ("deadline", "DEADLINE_EXCEEDED seen"),
    ("cancellation", "server saw the cancel"),
    ("REST → gRPC (gateway)", "every REST order readable back"),
    (
        "REST server-sent events",
        "every SSE stream ended DELIVERED",
    ),
    ("REST client mistakes", "each a 4xx naming the problem"),
    (
        "transactional outbox",
        "each committed OrderPlaced relayed once",
    ),
    (
        "inbox (inventory)",
        "5 acks lost, 5 redeliveries dropped; effects applied twice: 0",
    ),
    (
        "rolled-back order",
        "refused in its transaction; its event never left",
    ),
];

fn wait(child: &mut Child, limit: Duration) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("plexus demo still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn demo_reports_every_pattern_and_exits_zero() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_plexus"))
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).unwrap();
        text
    });
    let status = wait(&mut child, RUN_LIMIT);
    let report = reader.join().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "exit {status}\n{report}\n{stderr}");

    for (pattern, invariant) in ROWS {
        let row = report
            .lines()
            .find(|line| line.starts_with(&format!("{pattern} ")))
            .unwrap_or_else(|| panic!("no row for {pattern}:\n{report}"));
        assert!(row.contains(&format!("✓ {invariant}")), "{row}");
        let numbers: Vec<&str> = row[pattern.len()..].split_whitespace().take(2).collect();
        let calls: u64 = numbers[0].parse().unwrap();
        let ok: u64 = numbers[1].parse().unwrap();
        assert!(calls > 0 && ok == calls, "{row}");
    }
    assert!(!report.contains('✗'), "{report}");
    assert!(report.contains("every invariant holds"), "{report}");
}

#[test]
fn keep_running_serves_until_interrupted() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_plexus"))
        .args(["demo", "--keep-running"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let mut addrs: Vec<SocketAddr> = Vec::new();
    let started = Instant::now();
    while addrs.len() < 2 {
        let line = rx
            .recv_timeout(RUN_LIMIT.saturating_sub(started.elapsed()))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("no service addresses printed within {RUN_LIMIT:?}")
            });
        let service = line.split_whitespace().collect::<Vec<_>>();
        if let [name @ ("orders" | "support"), _, url] = service[..] {
            let addr = url
                .trim_start_matches("http://")
                .parse()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            addrs.push(addr);
        }
    }
    for addr in &addrs {
        TcpStream::connect_timeout(addr, Duration::from_secs(5))
            .expect("the service still accepts connections");
    }

    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = wait(&mut child, Duration::from_secs(60));
    assert!(status.success(), "exit {status} after Ctrl-C");
    for addr in &addrs {
        assert!(
            TcpStream::connect_timeout(addr, Duration::from_secs(1)).is_err(),
            "{addr} still accepts connections after the demo stopped"
        );
    }
}
