//! Loopback ports for the private servers the restart scenarios start.
//!
//! A server that stops and starts again on its port must find the port
//! free. A port the kernel hands out for `bind(:0)` lies in its ephemeral
//! range, the range it also gives every outgoing connection as its local
//! port: while the server is down, a connection of another test may take
//! it, and the server cannot start again ("address already in use").
//! [`free_port`] picks a port below that range instead, where only
//! listeners go.

use std::hash::{BuildHasher, RandomState};
use std::net::TcpListener;

/// Where ports are looked for when the kernel's range cannot be read.
const EPHEMERAL_LOW: u16 = 32768;
/// The lowest port looked at.
const LOWEST: u16 = 10_000;
/// Ports tried before giving up.
const TRIES: u16 = 200;

/// A loopback listener on a free port below the kernel's ephemeral range,
/// held until dropped (so that ports taken one after another differ);
/// the error says why none was found.
pub fn free_port() -> Result<TcpListener, String> {
    let high = ephemeral_low().max(LOWEST + TRIES);
    let span = u64::from(high - LOWEST);
    // A random start, so that test processes running at once rarely meet.
    let start = RandomState::new().hash_one(std::process::id()) % span;
    let mut last = None;
    for offset in 0..u64::from(TRIES) {
        let port = LOWEST + u16::try_from((start + offset * 7919) % span).unwrap_or(0);
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(listener) => return Ok(listener),
            Err(error) => last = Some(error),
        }
    }
    Err(format!(
        "no free loopback port among {TRIES} tried between {LOWEST} and {high}: {}",
        last.map_or_else(String::new, |e| e.to_string())
    ))
}

/// The first port of the kernel's ephemeral range.
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(EPHEMERAL_LOW)
}

#[cfg(test)]
mod tests {
    use super::{ephemeral_low, free_port};

    #[test]
    fn ports_lie_below_the_ephemeral_range_and_differ_while_held() {
        let first = free_port().unwrap();
        let second = free_port().unwrap();
        let (a, b) = (
            first.local_addr().unwrap().port(),
            second.local_addr().unwrap().port(),
        );
        assert_ne!(a, b);
        assert!(a < ephemeral_low() && b < ephemeral_low(), "{a} {b}");
    }
}
