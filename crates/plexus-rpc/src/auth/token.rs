//! Bearer tokens: the alternative to client certificates.

use std::fmt;

use subtle::ConstantTimeEq;

use super::Identity;

/// Turns a bearer token into the identity it stands for.
pub trait TokenVerifier: Send + Sync + 'static {
    /// The identity `token` authenticates, or `None` when the token is not valid.
    fn verify(&self, token: &str) -> Option<Identity>;
}

/// A fixed table of tokens and the principals they stand for, compared in
/// constant time.
#[derive(Clone, Default)]
pub struct StaticTokens {
    entries: Vec<(Vec<u8>, Identity)>,
}

impl StaticTokens {
    /// An empty table.
    pub fn new() -> Self {
        StaticTokens::default()
    }

    /// Adds `token`, which authenticates as `principal`.
    pub fn with(mut self, token: impl Into<String>, principal: impl Into<String>) -> Self {
        let token: String = token.into();
        self.entries.push((
            token.into_bytes(),
            Identity::from_token_principal(principal),
        ));
        self
    }
}

impl fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticTokens")
            .field("tokens", &self.entries.len())
            .finish()
    }
}

impl TokenVerifier for StaticTokens {
    fn verify(&self, token: &str) -> Option<Identity> {
        let mut found = None;
        for (candidate, identity) in &self.entries {
            // Compare every entry so timing does not reveal which one matched.
            if bool::from(candidate.as_slice().ct_eq(token.as_bytes())) {
                found = Some(identity.clone());
            }
        }
        found
    }
}
