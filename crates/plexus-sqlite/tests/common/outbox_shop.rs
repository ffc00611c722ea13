//! The outbox tests' shop: a bus on a fresh file, a `relay` group on its
//! `orders` topic, the service's pool on the same file and the outbox
//! for the bus.

use std::time::Duration;

use plexus_core::bus::{Publisher, SubscribeOptions, Subscriber, Subscription};
use plexus_sqlite::{SqliteBus, SqliteConfig, SqliteOutbox};
use sqlx::SqlitePool;

use super::{TempDb, next_within, number, service_pool};

/// How long a test waits for a delivery.
pub const WAIT: Duration = Duration::from_secs(10);

/// See the module.
pub struct Shop {
    _db: TempDb,
    pub bus: SqliteBus,
    pub config: SqliteConfig,
    pub relay: Subscription,
    pub pool: SqlitePool,
    pub outbox: SqliteOutbox,
}

impl Shop {
    /// Notices other connections' writes and runs retention every
    /// 10 ms; topics hold `capacity` if given.
    pub async fn open(capacity: Option<u64>) -> Self {
        let db = TempDb::new();
        let mut config = db.config();
        config.poll_interval = Duration::from_millis(10);
        config.retention_interval = Duration::from_millis(10);
        if let Some(capacity) = capacity {
            config.topic_capacity = capacity;
        }
        let bus = db.open_with(config.clone()).await;
        let relay = bus
            .subscribe("orders", SubscribeOptions::group("relay"))
            .await
            .unwrap();
        let pool = service_pool(&config).await;
        let outbox = SqliteOutbox::for_bus(&bus);
        Shop {
            _db: db,
            bus,
            config,
            relay,
            pool,
            outbox,
        }
    }

    /// The numbers of the next `count` deliveries, each acknowledged.
    pub async fn receive(&mut self, count: usize) -> Vec<usize> {
        let mut received = Vec::new();
        for _ in 0..count {
            let delivery = next_within(&mut self.relay, WAIT).await;
            received.push(number(delivery.message()));
            delivery.ack().await.unwrap();
        }
        received
    }

    /// The service's orders, by id.
    pub async fn orders(&self) -> Vec<i64> {
        sqlx::query_scalar("SELECT id FROM orders ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .unwrap()
    }

    pub async fn close(self) {
        Publisher::close(&self.bus).await.unwrap();
    }
}
