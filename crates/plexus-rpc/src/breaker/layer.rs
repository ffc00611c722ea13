//! [`CircuitBreakerLayer`].

use tower_layer::Layer;

use super::{BreakerConfig, Circuit, CircuitBreaker};

/// Wraps services in a [`CircuitBreaker`]. Every service this layer makes
/// shares one [`Circuit`]: make one layer per callee (per endpoint, or per
/// balanced group of endpoints).
#[derive(Debug, Clone)]
pub struct CircuitBreakerLayer {
    circuit: Circuit,
}

impl CircuitBreakerLayer {
    /// A layer with a new, closed circuit.
    pub fn new(config: BreakerConfig) -> Self {
        CircuitBreakerLayer {
            circuit: Circuit::new(config),
        }
    }

    /// The circuit, to read its state.
    pub fn circuit(&self) -> Circuit {
        self.circuit.clone()
    }
}

impl<S> Layer<S> for CircuitBreakerLayer {
    type Service = CircuitBreaker<S>;

    fn layer(&self, inner: S) -> CircuitBreaker<S> {
        CircuitBreaker::with_circuit(inner, self.circuit.clone())
    }
}
