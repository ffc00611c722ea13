//! The bounded in-memory order store.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use tonic::Status;

use super::next_status;
use super::v1::{Order, OrderStatus};
use super::validate::ValidOrder;

/// Orders by id, at most `capacity` of them.
#[derive(Debug)]
pub(crate) struct OrderStore {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    orders: HashMap<String, Order>,
    last_id: u64,
}

impl Inner {
    fn next_id(&mut self) -> String {
        self.last_id += 1;
        format!("ord-{}", self.last_id)
    }

    fn insert(&mut self, order: ValidOrder) -> Order {
        let order_id = self.next_id();
        self.insert_as(order_id, order)
    }

    fn insert_as(&mut self, order_id: String, order: ValidOrder) -> Order {
        let stored = Order {
            order_id,
            customer_id: order.customer_id,
            items: order.items,
            total_cents: order.total_cents,
            status: OrderStatus::Placed.into(),
        };
        self.orders.insert(stored.order_id.clone(), stored.clone());
        stored
    }
}

impl OrderStore {
    pub(crate) fn new(capacity: usize) -> Self {
        OrderStore {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the map consistent (every
        // change is a single insert or field write), so keep serving.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn full(&self, stored: usize, adding: usize) -> Status {
        Status::resource_exhausted(format!(
            "the order store is full: it holds {stored} of at most {} orders and cannot take {adding} more; \
             nothing was stored (the operator can raise OrdersConfig::max_orders)",
            self.capacity
        ))
    }

    /// Stores one order as PLACED.
    pub(crate) fn insert(&self, order: ValidOrder) -> Result<Order, Status> {
        let mut inner = self.lock();
        if inner.orders.len() >= self.capacity {
            return Err(self.full(inner.orders.len(), 1));
        }
        Ok(inner.insert(order))
    }

    /// Takes the id of an order about to be recorded elsewhere first (see
    /// [`insert_as`](Self::insert_as)), refusing when the store is full.
    pub(crate) fn reserve_id(&self) -> Result<String, Status> {
        let mut inner = self.lock();
        if inner.orders.len() >= self.capacity {
            return Err(self.full(inner.orders.len(), 1));
        }
        Ok(inner.next_id())
    }

    /// Stores an order under the id [`reserve_id`](Self::reserve_id)
    /// gave. Orders recorded concurrently may take the store past its
    /// capacity by as many as are placed at once.
    pub(crate) fn insert_as(&self, order_id: String, order: ValidOrder) -> Order {
        self.lock().insert_as(order_id, order)
    }

    /// Stores every order, or none when they do not all fit. Returns their ids.
    pub(crate) fn insert_all(&self, orders: Vec<ValidOrder>) -> Result<Vec<String>, Status> {
        let mut inner = self.lock();
        if inner.orders.len() + orders.len() > self.capacity {
            return Err(self.full(inner.orders.len(), orders.len()));
        }
        Ok(orders
            .into_iter()
            .map(|o| inner.insert(o).order_id)
            .collect())
    }

    /// A copy of the order.
    pub(crate) fn get(&self, order_id: &str) -> Option<Order> {
        self.lock().orders.get(order_id).cloned()
    }

    /// Moves the order one fulfilment step on from `from`, unless someone
    /// else already did; returns its status now (`None`: no such order).
    pub(crate) fn advance_from(&self, order_id: &str, from: OrderStatus) -> Option<OrderStatus> {
        let mut inner = self.lock();
        let order = inner.orders.get_mut(order_id)?;
        if order.status() == from
            && let Some(next) = next_status(from)
        {
            order.set_status(next);
        }
        Some(order.status())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> ValidOrder {
        ValidOrder {
            customer_id: "cus-1".to_owned(),
            items: Vec::new(),
            total_cents: 1,
        }
    }

    #[test]
    fn refuses_orders_past_capacity() {
        let store = OrderStore::new(2);
        store.insert(order()).unwrap();
        let error = store.insert_all(vec![order(), order()]).unwrap_err();
        assert_eq!(error.code(), tonic::Code::ResourceExhausted);
        store.insert(order()).unwrap();
        let error = store.insert(order()).unwrap_err();
        assert_eq!(error.code(), tonic::Code::ResourceExhausted);
        assert!(
            error.message().contains("max_orders"),
            "{}",
            error.message()
        );
        assert!(
            store.get("ord-3").is_none(),
            "nothing of the refused import is stored"
        );
    }

    #[test]
    fn advancing_moves_one_step_and_stops_at_delivered() {
        let store = OrderStore::new(1);
        let id = store.insert(order()).unwrap().order_id;
        let mut seen = vec![OrderStatus::Placed];
        while let Some(status) = store.advance_from(&id, *seen.last().unwrap()) {
            if status == *seen.last().unwrap() {
                break;
            }
            seen.push(status);
        }
        use OrderStatus::*;
        assert_eq!(seen, vec![Placed, Paid, Packed, Shipped, Delivered]);
        // A watcher that is behind does not move the order twice.
        assert_eq!(store.advance_from(&id, Paid), Some(Delivered));
    }
}
