//! [`ConnectionInfo`]: what the server knows of the connection a call came on.

use std::net::SocketAddr;

use crate::auth::Identity;

/// The connection a call arrived on, in every request's extensions.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    remote_addr: SocketAddr,
    peer_identity: Option<Identity>,
}

impl ConnectionInfo {
    pub(crate) fn new(remote_addr: SocketAddr, peer_identity: Option<Identity>) -> Self {
        ConnectionInfo {
            remote_addr,
            peer_identity,
        }
    }

    /// The client's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote_addr
    }

    /// The identity of the client certificate verified in the TLS handshake.
    pub fn peer_identity(&self) -> Option<&Identity> {
        self.peer_identity.as_ref()
    }
}
