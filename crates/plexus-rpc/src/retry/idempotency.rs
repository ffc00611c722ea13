//! [`Idempotency`]: which calls may be sent more than once.

use std::collections::HashSet;

use http::Method;
use prost_reflect::DescriptorPool;
use prost_reflect::prost_types::method_options::IdempotencyLevel;

/// The most gRPC methods and HTTP routes one [`Idempotency`] holds.
pub const MAX_ENTRIES: usize = 10_000;

/// Which calls may be retried: only those the service declares safe to
/// run more than once.
///
/// - **gRPC** (`content-type: application/grpc…`): the methods named by
///   path (`/package.Service/Method`), and those whose proto declares
///   `option idempotency_level = IDEMPOTENT` or `NO_SIDE_EFFECTS` when a
///   descriptor pool is given ([`descriptors`](Self::descriptors)). Nothing
///   else: every gRPC call is a `POST`.
/// - **HTTP**: requests whose method is idempotent — `GET`, `HEAD`,
///   `OPTIONS`, `PUT` and `DELETE` by default (RFC 9110 §9.2.2) — and the
///   configured routes (method + path pattern, e.g.
///   `POST /v1/orders/{id}/refresh`).
///
/// Only methods whose request is one message (unary or server streaming)
/// should be declared: a retried request is buffered whole first, which a
/// client or bidirectional stream would never finish. Methods found in a
/// descriptor pool that stream requests are skipped for that reason.
#[derive(Debug, Clone)]
pub struct Idempotency {
    grpc: HashSet<String>,
    http_methods: Vec<Method>,
    http_routes: Vec<(Method, Route)>,
}

impl Default for Idempotency {
    fn default() -> Self {
        Idempotency::new()
    }
}

impl Idempotency {
    /// The HTTP defaults (`GET`, `HEAD`, `OPTIONS`, `PUT`, `DELETE`) and
    /// no gRPC method.
    pub fn new() -> Self {
        Idempotency {
            grpc: HashSet::new(),
            http_methods: vec![
                Method::GET,
                Method::HEAD,
                Method::OPTIONS,
                Method::PUT,
                Method::DELETE,
            ],
            http_routes: Vec::new(),
        }
    }

    /// Nothing is idempotent: no call is ever retried.
    pub fn none() -> Self {
        Idempotency {
            grpc: HashSet::new(),
            http_methods: Vec::new(),
            http_routes: Vec::new(),
        }
    }

    /// Declares the gRPC method at `path` (`/package.Service/Method`)
    /// idempotent.
    ///
    /// # Panics
    /// When `path` is not of that form, or past [`MAX_ENTRIES`].
    pub fn grpc_method(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        assert!(
            is_grpc_path(&path),
            "`{path}` is not a gRPC method path; expected `/package.Service/Method`"
        );
        self.grpc.insert(path);
        self.check_size();
        self
    }

    /// Declares idempotent every unary or server-streaming method of
    /// `pool` whose proto says `option idempotency_level = IDEMPOTENT;` or
    /// `NO_SIDE_EFFECTS`.
    ///
    /// # Panics
    /// Past [`MAX_ENTRIES`].
    pub fn descriptors(mut self, pool: &DescriptorPool) -> Self {
        for service in pool.services() {
            for method in service.methods() {
                if method.is_client_streaming() {
                    continue;
                }
                let level = method
                    .method_descriptor_proto()
                    .options
                    .as_ref()
                    .map(|o| o.idempotency_level());
                if matches!(
                    level,
                    Some(IdempotencyLevel::Idempotent | IdempotencyLevel::NoSideEffects)
                ) {
                    self.grpc
                        .insert(format!("/{}/{}", service.full_name(), method.name()));
                }
            }
        }
        self.check_size();
        self
    }

    /// Replaces the HTTP methods that are idempotent on every route.
    pub fn http_methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.http_methods = methods.into_iter().collect();
        self.check_size();
        self
    }

    /// Declares `method` on paths matching `pattern` idempotent. A pattern
    /// is `/`-separated segments; a segment `{name}` matches any one
    /// segment, e.g. `/v1/orders/{id}/refresh`.
    ///
    /// # Panics
    /// When `pattern` does not start with `/`, or past [`MAX_ENTRIES`].
    pub fn http_route(mut self, method: Method, pattern: &str) -> Self {
        self.http_routes.push((method, Route::parse(pattern)));
        self.check_size();
        self
    }

    /// Whether the gRPC method at `path` is declared idempotent.
    pub fn is_grpc_idempotent(&self, path: &str) -> bool {
        self.grpc.contains(path)
    }

    /// Whether an HTTP request `method path` is idempotent.
    pub fn is_http_idempotent(&self, method: &Method, path: &str) -> bool {
        self.http_methods.contains(method)
            || self
                .http_routes
                .iter()
                .any(|(m, route)| m == method && route.matches(path))
    }

    /// Whether the call `method path` may be retried; `grpc` tells which
    /// protocol it is.
    pub fn allows(&self, grpc: bool, method: &Method, path: &str) -> bool {
        if grpc {
            self.is_grpc_idempotent(path)
        } else {
            self.is_http_idempotent(method, path)
        }
    }

    fn check_size(&self) {
        let size = self.grpc.len() + self.http_methods.len() + self.http_routes.len();
        assert!(
            size <= MAX_ENTRIES,
            "Idempotency holds {size} entries; at most {MAX_ENTRIES} are allowed"
        );
    }
}

fn is_grpc_path(path: &str) -> bool {
    let mut parts = path.split('/');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some(""), Some(service), Some(method), None) if !service.is_empty() && !method.is_empty()
    )
}

/// A path pattern: literal segments and `{name}` wildcards.
#[derive(Debug, Clone)]
struct Route {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone)]
enum Segment {
    Literal(String),
    Any,
}

impl Route {
    fn parse(pattern: &str) -> Self {
        assert!(
            pattern.starts_with('/'),
            "route pattern `{pattern}` must start with `/`"
        );
        let segments = pattern[1..]
            .split('/')
            .map(|s| {
                if s.starts_with('{') && s.ends_with('}') && s.len() > 2 {
                    Segment::Any
                } else {
                    Segment::Literal(s.to_owned())
                }
            })
            .collect();
        Route { segments }
    }

    fn matches(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        let mut parts = rest.split('/');
        for segment in &self.segments {
            match (segment, parts.next()) {
                (Segment::Any, Some(part)) if !part.is_empty() => {}
                (Segment::Literal(l), Some(part)) if l == part => {}
                _ => return false,
            }
        }
        parts.next().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_whole_segments() {
        let i = Idempotency::none().http_route(Method::POST, "/v1/orders/{id}/refresh");
        assert!(i.is_http_idempotent(&Method::POST, "/v1/orders/7/refresh"));
        assert!(!i.is_http_idempotent(&Method::POST, "/v1/orders//refresh"));
        assert!(!i.is_http_idempotent(&Method::POST, "/v1/orders/7/refresh/x"));
        assert!(!i.is_http_idempotent(&Method::POST, "/v1/orders/7"));
        assert!(!i.is_http_idempotent(&Method::PUT, "/v1/orders/7/refresh"));
    }

    #[test]
    fn grpc_paths_are_checked() {
        assert!(is_grpc_path("/a.B/C"));
        assert!(!is_grpc_path("/a.B/"));
        assert!(!is_grpc_path("a.B/C"));
        assert!(!is_grpc_path("/a/B/C"));
    }
}
