//! `plexus call`: calls any gRPC method with JSON, learning its types from
//! the server's reflection service (like grpcurl).
//!
//! ```text
//! plexus call http://127.0.0.1:50051 plexus.echo.v1.Echo/Unary -d '{"payload":"aGk="}'
//! plexus call 127.0.0.1:50051 Echo/ServerStream -d '{"count":3}'
//! plexus call 127.0.0.1:50051 --list plexus.echo.v1.Echo
//! plexus call http://127.0.0.1:8080/v1/orders -d '{"customerId":"c-1","items":[…]}'
//! plexus call http://127.0.0.1:8080/v1/orders/ord-1/watch
//! ```
//!
//! - [`args`]: the command line; [`client`]: the connection, metadata and
//!   deadline; [`reflection`]: the reflection client (v1, then v1alpha);
//!   [`resolve`]: names to descriptors; [`input`]: JSON to request messages;
//!   [`codec`]: the tonic codec for dynamic messages; [`invoke`]: the four
//!   call kinds; [`output`]: replies as JSON, listings; [`error`]: exit codes;
//!   [`rest`]: REST routes of a gateway, over HTTP.

mod args;
mod client;
mod codec;
mod error;
mod input;
mod invoke;
mod output;
mod reflection;
mod resolve;
mod rest;

use tokio::time::Instant;
use tonic::Status;

pub use args::Args;
use args::{Input, Target};
use client::Client;
use error::Failure;
use output::Output;
use reflection::Reflection;

/// The exit codes, as shown by `plexus call --help`.
const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  the call ended with a gRPC status other than OK (printed as `ERROR: CODE: message`),
     or a REST route answered with an HTTP error (`ERROR: HTTP 404 NOT_FOUND: message`)
  2  wrong arguments or input: unknown service or method, invalid JSON, unknown field
  3  the server cannot be used: unreachable, TLS failure, no server reflection";

/// Runs `plexus call`; on failure prints the reason on standard error and
/// returns the exit code of its kind (see [`EXIT_CODES_HELP`]).
pub async fn run(args: Args) -> std::process::ExitCode {
    match execute(args).await {
        Ok(()) | Err(Failure::OutputClosed) => std::process::ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{failure}");
            std::process::ExitCode::from(failure.exit_code())
        }
    }
}

async fn execute(args: Args) -> Result<(), Failure> {
    let Some(timeout) = args.timeout else {
        return work(&args, None).await;
    };
    let deadline = Instant::now() + timeout;
    match tokio::time::timeout_at(deadline, work(&args, Some(deadline))).await {
        Ok(result) => result,
        Err(_) => Err(Failure::Status(Status::deadline_exceeded(format!(
            "--timeout {} passed before the call finished",
            humantime::format_duration(timeout)
        )))),
    }
}

async fn work(args: &Args, deadline: Option<Instant>) -> Result<(), Failure> {
    if rest::is_route(&args.addr) {
        return rest::call(args, deadline).await;
    }
    let target = args
        .target
        .as_deref()
        .map(|text| Target::parse(text, args.list))
        .transpose()?;
    if args.list && args.data.is_some() {
        return Err(Failure::usage("--list sends no request; drop -d"));
    }
    let input = Input::from_arg(args.data.as_deref());
    let client = Client::connect(args, deadline).await?;
    let mut reflection = Reflection::open(&client).await?;
    tracing::debug!(version = ?reflection.version(), "server reflection");

    let Some(target) = target else {
        if args.list {
            return output::services(reflection.services());
        }
        return Err(Failure::usage(
            "name the method to call, as package.Service/Method, or add --list to see what the server offers",
        ));
    };
    let service_name = resolve::service_name(&reflection, &target)?;
    let service = resolve::service(&mut reflection, &service_name).await?;
    let method = target
        .method
        .as_deref()
        .map(|name| resolve::method(&service, name))
        .transpose()?;
    if args.list {
        return output::methods(&service, method.as_ref());
    }
    let method = method.expect("a call target always names a method");
    tracing::debug!(method = %method.full_name(), kind = output::kind(&method), "calling");
    let documents = input::read(&input)?;
    let mut output = Output::new(args.emit_defaults);
    invoke::call(&client, &method, documents, &mut output).await
}
