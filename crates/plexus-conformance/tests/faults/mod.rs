//! Test backends with deliberate faults.

mod handle;

pub use handle::{Fault, backend};
