//! Authentication and authorization: client-certificate or bearer-token
//! identities checked against a per-method [`Policy`] with default deny.
//!
//! [`AuthLayer`] runs before the handler. A call is refused, without reaching
//! its handler, with:
//!
//! - `UNAUTHENTICATED` when the method needs an identity and the caller
//!   presented neither a client certificate nor a bearer token, or presented
//!   a bearer token that is not valid;
//! - `PERMISSION_DENIED` when the caller's identity is not allowed to call the
//!   method, or no rule allows the method at all (default deny).
//!
//! A client certificate from an unknown CA never gets this far: the TLS
//! handshake refuses it.

mod identity;
mod layer;
mod policy;
mod token;

pub use identity::{Identity, IdentitySource};
pub use layer::{Auth, AuthLayer};
pub use policy::Policy;
pub use token::{StaticTokens, TokenVerifier};
