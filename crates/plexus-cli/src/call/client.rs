//! [`Client`]: the connection to the server, with the metadata and deadline
//! that every request of this command carries.

use std::path::Path;
use std::time::Duration;

use plexus_rpc::client::{Channel, ClientBuilder};
use plexus_rpc::tls::ClientTls;
use tokio::time::Instant;
use tonic::metadata::MetadataMap;
use tonic::{Request, Status};

use super::args::{self, Args, Connection};
use super::error::{Failure, chain};

/// Longest time allowed to establish the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connected channel plus what every request carries.
#[derive(Debug, Clone)]
pub struct Client {
    channel: Channel,
    url: String,
    metadata: MetadataMap,
    deadline: Option<Instant>,
}

impl Client {
    /// Connects as `args` say, within `deadline`.
    pub async fn connect(args: &Args, deadline: Option<Instant>) -> Result<Client, Failure> {
        let connection: &Connection = &args.connection;
        let tls = connection.tls || args.addr.starts_with("https://");
        let url = url(&args.addr, tls)?;
        let metadata = args::metadata(&connection.headers)?;
        let mut builder = ClientBuilder::new(url.clone()).connect_timeout(match deadline {
            Some(deadline) => {
                CONNECT_TIMEOUT.min(deadline.saturating_duration_since(Instant::now()))
            }
            None => CONNECT_TIMEOUT,
        });
        if tls {
            builder = builder.tls(client_tls(connection)?);
        } else if connection.ca.is_some()
            || connection.cert.is_some()
            || connection.server_name.is_some()
        {
            return Err(Failure::usage(
                "--ca, --cert, --key and --server-name need TLS; add --tls or use an https:// address",
            ));
        }
        if let Some(token) = &connection.token {
            builder = builder.bearer_token(token.clone());
        }
        let channel = builder.connect().await.map_err(|e| match e {
            plexus_rpc::Error::Connect { .. } => Failure::unusable(chain(&e)),
            other => Failure::usage(chain(&other)),
        })?;
        Ok(Client {
            channel,
            url,
            metadata,
            deadline,
        })
    }

    /// The channel to the server.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The server's address, as connected to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A request carrying `message`, the `-H` metadata and what remains of
    /// the deadline (as `grpc-timeout`).
    pub fn request<T>(&self, message: T) -> Result<Request<T>, Status> {
        let mut request = Request::from_parts(self.metadata.clone(), Default::default(), message);
        if let Some(deadline) = self.deadline {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(Status::deadline_exceeded(
                    "--timeout passed before the call could be sent",
                ));
            }
            request.set_timeout(remaining);
        }
        Ok(request)
    }
}

/// The URL for `addr`: kept when it has a scheme, else `http://` or
/// `https://` (with TLS) is put in front.
fn url(addr: &str, tls: bool) -> Result<String, Failure> {
    if addr.starts_with("https://") {
        return Ok(addr.to_owned());
    }
    if addr.starts_with("http://") {
        return match tls {
            true => Err(Failure::usage(format!(
                "--tls needs an https:// address (or host:port), not {addr}"
            ))),
            false => Ok(addr.to_owned()),
        };
    }
    if let Some((scheme, _)) = addr.split_once("://") {
        return Err(Failure::usage(format!(
            "the address {addr} has the scheme `{scheme}`; use http://, https:// or host:port"
        )));
    }
    let scheme = if tls { "https" } else { "http" };
    Ok(format!("{scheme}://{addr}"))
}

fn client_tls(args: &Connection) -> Result<ClientTls, Failure> {
    let tls_error = |e: plexus_rpc::Error| Failure::usage(chain(&e));
    let Some(ca) = &args.ca else {
        return Err(Failure::usage(
            "TLS needs --ca FILE: the CA certificate (PEM) that signed the server's certificate",
        ));
    };
    let mut tls = ClientTls::new()
        .ca_pem(read(ca, "--ca")?)
        .map_err(tls_error)?;
    if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        tls = tls
            .identity_pem(read(cert, "--cert")?, read(key, "--key")?)
            .map_err(tls_error)?;
    }
    if let Some(name) = &args.server_name {
        tls = tls.domain_name(name.clone());
    }
    Ok(tls)
}

fn read(path: &Path, flag: &str) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| {
        Failure::usage(format!(
            "cannot read the {flag} file {}: {e}",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_get_the_scheme_tls_asks_for() {
        assert_eq!(url("127.0.0.1:1", false).unwrap(), "http://127.0.0.1:1");
        assert_eq!(url("127.0.0.1:1", true).unwrap(), "https://127.0.0.1:1");
        assert_eq!(url("http://h:1", false).unwrap(), "http://h:1");
        assert_eq!(url("https://h:1", false).unwrap(), "https://h:1");
        assert!(
            url("http://h:1", true)
                .unwrap_err()
                .to_string()
                .contains("https://")
        );
        assert!(
            url("ftp://h:1", false)
                .unwrap_err()
                .to_string()
                .contains("`ftp`")
        );
    }
}
