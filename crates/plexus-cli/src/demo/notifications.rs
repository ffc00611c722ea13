//! The publish/subscribe rows: every `OrderPlaced` reaches each
//! notification group once, and the email group's members share them.

use std::time::Duration;

use shop::notifications::{GROUPS, NotificationsMetrics};
use tokio::time::Instant;

use super::report::{Invariant, Latency, Row};

/// How long the groups may take to catch up with the orders placed.
const CATCH_UP: Duration = Duration::from_secs(10);

/// Waits until every group has handled `placed` distinct orders (at most
/// [`CATCH_UP`]), then one row per group.
pub(super) async fn rows(metrics: &NotificationsMetrics, placed: u64) -> Vec<Row> {
    let placed = usize::try_from(placed).unwrap_or(usize::MAX);
    let give_up = Instant::now() + CATCH_UP;
    while Instant::now() < give_up
        && GROUPS
            .iter()
            .any(|(group, _)| metrics.distinct(group) < placed)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    GROUPS
        .iter()
        .map(|&(group, members)| row(metrics, group, members, placed))
        .collect()
}

fn row(metrics: &NotificationsMetrics, group: &str, members: usize, placed: usize) -> Row {
    let receipts = metrics.group(group);
    let mut violations = Vec::new();
    if receipts.orders.len() != placed {
        violations.push(format!(
            "{} of {placed} OrderPlaced events handled within {CATCH_UP:?}",
            receipts.orders.len()
        ));
    }
    let twice: Vec<&String> = receipts
        .orders
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    if !twice.is_empty() {
        violations.push(format!(
            "{} event(s) handled more than once, e.g. {}",
            twice.len(),
            twice[0]
        ));
    }
    let mut split: Vec<(String, u64)> = receipts.per_member.into_iter().collect();
    split.sort();
    if split.len() != members || split.iter().any(|(_, n)| *n == 0) {
        violations.push(format!(
            "{members} members should share the events; handled per member: {split:?}"
        ));
    }
    let mut latency = Latency::new();
    for delay in &receipts.delays {
        latency.record(*delay);
    }
    let handled: u64 = split.iter().map(|(_, n)| n).sum();
    let claim = if members > 1 {
        let shares: Vec<String> = split.iter().map(|(_, n)| n.to_string()).collect();
        format!(
            "every OrderPlaced once; shared {} across {members} members",
            shares.join("/")
        )
    } else {
        "every OrderPlaced once".to_owned()
    };
    Row {
        pattern: match group {
            "email" => "pub/sub: email group",
            "sms" => "pub/sub: sms group",
            _ => "pub/sub: analytics group",
        },
        calls: placed as u64,
        ok: handled,
        latency,
        invariant: Invariant::check(claim, &violations),
    }
}
