//! Command-line arguments of `plexus call` and what they mean once parsed.

use std::path::PathBuf;
use std::time::Duration;

use tonic::metadata::{AsciiMetadataValue, BinaryMetadataValue, MetadataKey, MetadataMap};

use super::error::Failure;

/// Arguments of `plexus call`.
#[derive(Debug, clap::Args)]
#[command(after_help = super::EXIT_CODES_HELP)]
pub struct Args {
    /// Server address: `http://host:port`, `https://host:port`, or `host:port`
    /// (https with `--tls`, http otherwise). A URL with a path, such as
    /// `http://host:port/v1/orders/ord-1`, is a REST route of a gateway:
    /// it is called over HTTP with the JSON of `-d` (POST with `-d`, GET
    /// without, or `-X METHOD`).
    pub addr: String,

    /// The method to call: `package.Service/Method` or `package.Service.Method`
    /// (a service name without its package works when it is unambiguous). With
    /// `--list`, a service whose methods to list.
    pub target: Option<String>,

    /// The request as proto3 JSON, `@FILE` to read it from a file, or `-` for
    /// standard input. Client- and bidirectional-streaming methods take a
    /// sequence of JSON messages (one per line, or simply one after another).
    /// Without `-d`, a unary or server-streaming call sends an empty message
    /// and a client-streaming or bidirectional call sends none.
    #[arg(short = 'd', long = "data", value_name = "JSON|@FILE|-")]
    pub data: Option<String>,

    /// The HTTP method for a REST route (default: POST with `-d`, GET without).
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    pub method: Option<String>,

    /// Lists the server's services, or the methods of the service named
    /// by TARGET with their request and reply types and call kind.
    #[arg(long)]
    pub list: bool,

    /// Deadline for the whole command (connecting, reflection and the
    /// call), e.g. `500ms`, `2s`, `1m`. The call carries what remains of it
    /// as `grpc-timeout`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Prints fields that hold their default value (zero, empty) too.
    #[arg(long)]
    pub emit_defaults: bool,

    /// How to reach and authenticate to the server.
    #[command(flatten, next_help_heading = "Connection")]
    pub connection: Box<Connection>,
}

/// Connection options of `plexus call` (boxed in [`Args`]: they are many).
#[derive(Debug, clap::Args)]
pub struct Connection {
    /// Connects over TLS (an `https://` address implies it). Needs `--ca`.
    #[arg(long)]
    pub tls: bool,

    /// The CA certificate (PEM) that the server's certificate must chain to.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,

    /// Client certificate chain (PEM) for mutual TLS; needs `--key`.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,

    /// Private key (PEM) of `--cert`.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,

    /// Verifies the server certificate against this name instead of the
    /// address's host.
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,

    /// Sends `authorization: Bearer TOKEN` on every call.
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,

    /// Extra request metadata, `name: value`; repeatable. The value of a
    /// name ending in `-bin` is sent as raw bytes.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|e| format!("{e}; write a duration such as 500ms, 2s or 1m"))?;
    if duration.is_zero() {
        return Err("a timeout of zero would fail every call; give a positive duration".to_owned());
    }
    Ok(duration)
}

/// A method named on the command line, not yet checked against the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The service as written (maybe without its package).
    pub service: String,
    /// The method's name, when one was given.
    pub method: Option<String>,
}

impl Target {
    /// Parses `Service/Method`, `Service.Method` or, when `method_optional`,
    /// a bare `Service` (a leading `/`, as in an HTTP path, is ignored).
    pub fn parse(text: &str, method_optional: bool) -> Result<Target, Failure> {
        let text = text.trim().trim_start_matches('/');
        let invalid = |why: &str| {
            Failure::usage(format!(
                "cannot read the method `{text}`: {why}; write it as package.Service/Method"
            ))
        };
        if text.is_empty() {
            return Err(invalid("it is empty"));
        }
        if let Some((service, method)) = text.split_once('/') {
            if service.is_empty() || method.is_empty() || method.contains(['/', '.']) {
                return Err(invalid(
                    "expected one `/` between a service and a method name",
                ));
            }
            return Ok(Target {
                service: service.to_owned(),
                method: Some(method.to_owned()),
            });
        }
        if method_optional {
            return Ok(Target {
                service: text.to_owned(),
                method: None,
            });
        }
        match text.rsplit_once('.') {
            Some((service, method)) if !service.is_empty() && !method.is_empty() => Ok(Target {
                service: service.to_owned(),
                method: Some(method.to_owned()),
            }),
            _ => Err(invalid("no method name")),
        }
    }
}

/// Where the request messages come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// No `-d`: the default request(s).
    Absent,
    /// JSON given on the command line.
    Inline(String),
    /// `@FILE`.
    File(PathBuf),
    /// `-`: standard input.
    Stdin,
}

impl Input {
    /// Reads the `-d` argument.
    pub fn from_arg(data: Option<&str>) -> Input {
        match data {
            None => Input::Absent,
            Some("-") => Input::Stdin,
            Some(text) => match text.strip_prefix('@') {
                Some("-") => Input::Stdin,
                Some(path) => Input::File(PathBuf::from(path)),
                None => Input::Inline(text.to_owned()),
            },
        }
    }

    /// How the input is named in error messages.
    pub fn describe(&self) -> String {
        match self {
            Input::Absent => "the default request".to_owned(),
            Input::Inline(_) => "-d".to_owned(),
            Input::File(path) => path.display().to_string(),
            Input::Stdin => "standard input".to_owned(),
        }
    }
}

/// Parses the `-H name: value` arguments into request metadata.
pub fn metadata(headers: &[String]) -> Result<MetadataMap, Failure> {
    let mut map = MetadataMap::new();
    for header in headers {
        let Some((name, value)) = header.split_once(':') else {
            return Err(Failure::usage(format!(
                "-H `{header}` has no `:`; write it as 'name: value'"
            )));
        };
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        let bad_name = |_| {
            Failure::usage(format!(
                "-H `{header}`: `{name}` is not a valid metadata name"
            ))
        };
        if name.ends_with("-bin") {
            let key = MetadataKey::from_bytes(name.as_bytes()).map_err(bad_name)?;
            map.append_bin(key, BinaryMetadataValue::from_bytes(value.as_bytes()));
        } else {
            let key = MetadataKey::from_bytes(name.as_bytes()).map_err(bad_name)?;
            let value = AsciiMetadataValue::try_from(value).map_err(|_| {
                Failure::usage(format!(
                    "-H `{header}`: the value must be visible ASCII (use a name ending in -bin for bytes)"
                ))
            })?;
            map.append(key, value);
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(service: &str, method: Option<&str>) -> Target {
        Target {
            service: service.to_owned(),
            method: method.map(str::to_owned),
        }
    }

    #[test]
    fn targets_accept_slash_dot_and_path_forms() {
        let unary = target("plexus.echo.v1.Echo", Some("Unary"));
        assert_eq!(
            Target::parse("plexus.echo.v1.Echo/Unary", false).unwrap(),
            unary
        );
        assert_eq!(
            Target::parse("plexus.echo.v1.Echo.Unary", false).unwrap(),
            unary
        );
        assert_eq!(
            Target::parse("/plexus.echo.v1.Echo/Unary", false).unwrap(),
            unary
        );
        assert_eq!(
            Target::parse("Echo/Unary", false).unwrap(),
            target("Echo", Some("Unary"))
        );
        assert_eq!(
            Target::parse("plexus.echo.v1.Echo", true).unwrap(),
            target("plexus.echo.v1.Echo", None)
        );
    }

    #[test]
    fn malformed_targets_are_refused_with_the_expected_form() {
        for bad in ["", "Echo", "Echo/", "/Unary", "a/b/c", "a/b.c"] {
            let error = Target::parse(bad, false).unwrap_err().to_string();
            assert!(error.contains("package.Service/Method"), "{bad}: {error}");
        }
    }

    #[test]
    fn input_reads_inline_file_and_stdin() {
        assert_eq!(Input::from_arg(None), Input::Absent);
        assert_eq!(Input::from_arg(Some("-")), Input::Stdin);
        assert_eq!(Input::from_arg(Some("@-")), Input::Stdin);
        assert_eq!(
            Input::from_arg(Some("@req.json")),
            Input::File("req.json".into())
        );
        assert_eq!(Input::from_arg(Some("{}")), Input::Inline("{}".to_owned()));
    }

    #[test]
    fn headers_become_ascii_and_binary_metadata() {
        let map = metadata(&["X-Tenant: acme".to_owned(), "trace-bin: \u{1}".to_owned()]).unwrap();
        assert_eq!(map.get("x-tenant").unwrap(), "acme");
        assert_eq!(
            map.get_bin("trace-bin")
                .unwrap()
                .to_bytes()
                .unwrap()
                .as_ref(),
            b"\x01"
        );
        let error = metadata(&["no-colon".to_owned()]).unwrap_err().to_string();
        assert!(error.contains("'name: value'"), "{error}");
        let error = metadata(&["bad name: x".to_owned()])
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a valid metadata name"), "{error}");
    }

    #[test]
    fn durations_use_human_units() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("soon").unwrap_err().contains("500ms"));
        assert!(parse_duration("0s").is_err());
    }
}
