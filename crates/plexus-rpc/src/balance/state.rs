//! [`Health`]: what the balancer knows of its endpoints' health.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// The health of a balancer's endpoints, for metrics and tests. Clones
/// share it.
#[derive(Debug)]
pub struct Health<K> {
    shared: Arc<Shared<K>>,
}

impl<K> Clone for Health<K> {
    fn clone(&self) -> Self {
        Health {
            shared: Arc::clone(&self.shared),
        }
    }
}

#[derive(Debug)]
struct Shared<K> {
    keys: Vec<K>,
    healthy: Vec<AtomicBool>,
    healthy_count: AtomicUsize,
    last_error: Mutex<Vec<Option<String>>>,
    /// Bumped on every change of an endpoint's health.
    changes: watch::Sender<u64>,
}

/// One endpoint's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointHealth<K> {
    /// The endpoint's key.
    pub key: K,
    /// Whether it receives calls.
    pub healthy: bool,
    /// Why its last failed check failed, while it is unhealthy.
    pub last_error: Option<String>,
}

impl<K: PartialEq + Clone> Health<K> {
    /// All endpoints healthy (until a check says otherwise).
    pub(crate) fn new(keys: Vec<K>) -> Self {
        let n = keys.len();
        Health {
            shared: Arc::new(Shared {
                healthy: (0..n).map(|_| AtomicBool::new(true)).collect(),
                healthy_count: AtomicUsize::new(n),
                last_error: Mutex::new(vec![None; n]),
                changes: watch::channel(0).0,
                keys,
            }),
        }
    }

    /// Whether the endpoint `key` is healthy; `None` for an unknown key.
    pub fn is_healthy(&self, key: &K) -> Option<bool> {
        let index = self.shared.keys.iter().position(|k| k == key)?;
        Some(self.is_healthy_at(index))
    }

    /// How many endpoints are healthy.
    pub fn healthy_count(&self) -> usize {
        self.shared.healthy_count.load(Ordering::SeqCst)
    }

    /// Every endpoint's health.
    pub fn endpoints(&self) -> Vec<EndpointHealth<K>> {
        let errors = self.errors();
        self.shared
            .keys
            .iter()
            .enumerate()
            .map(|(i, key)| EndpointHealth {
                key: key.clone(),
                healthy: self.is_healthy_at(i),
                last_error: errors[i].clone(),
            })
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.shared.keys.len()
    }

    pub(crate) fn is_healthy_at(&self, index: usize) -> bool {
        self.shared.healthy[index].load(Ordering::SeqCst)
    }

    /// Records a check's result for endpoint `index`; tells whether its
    /// health changed.
    pub(crate) fn set(&self, index: usize, healthy: bool, error: Option<String>) -> bool {
        self.errors()[index] = error;
        let was = self.shared.healthy[index].swap(healthy, Ordering::SeqCst);
        if was == healthy {
            return false;
        }
        if healthy {
            self.shared.healthy_count.fetch_add(1, Ordering::SeqCst);
        } else {
            self.shared.healthy_count.fetch_sub(1, Ordering::SeqCst);
        }
        self.shared.changes.send_modify(|n| *n += 1);
        true
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }

    fn errors(&self) -> std::sync::MutexGuard<'_, Vec<Option<String>>> {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

impl<K: Clone> Health<K> {
    pub(crate) fn key(&self, index: usize) -> K {
        self.shared.keys[index].clone()
    }
}
