//! [`AuthLayer`] and its service, [`Auth`].

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{Either, Ready, ready};
use http::{Request, Response};
use tonic::Status;
use tonic::body::Body;
use tower_layer::Layer;
use tower_service::Service;

use super::policy::Decision;
use super::{Identity, Policy, TokenVerifier};
use crate::server::ConnectionInfo;

/// Authenticates callers and enforces a [`Policy`]. See the [module docs](super).
#[derive(Clone)]
pub struct AuthLayer {
    policy: Arc<Policy>,
    tokens: Option<Arc<dyn TokenVerifier>>,
}

impl AuthLayer {
    /// Enforces `policy`; callers authenticate by client certificate only.
    pub fn new(policy: Policy) -> Self {
        AuthLayer {
            policy: Arc::new(policy),
            tokens: None,
        }
    }

    /// Also accepts `authorization: Bearer <token>`, verified by `tokens`.
    pub fn with_tokens(mut self, tokens: Arc<dyn TokenVerifier>) -> Self {
        self.tokens = Some(tokens);
        self
    }
}

impl std::fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthLayer")
            .field("policy", &self.policy)
            .field("tokens", &self.tokens.is_some())
            .finish()
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S> Service<Request<Body>> for Auth<S>
where
    S: Service<Request<Body>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response<Body>, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        match self.layer.authenticate(&req) {
            Ok(identity) => {
                if let Err(status) = self.layer.authorize(req.uri().path(), identity.as_ref()) {
                    return Either::Left(ready(Ok(status.into_http())));
                }
                if let Some(identity) = identity {
                    req.extensions_mut().insert(identity);
                }
                Either::Right(self.inner.call(req))
            }
            Err(status) => Either::Left(ready(Ok(status.into_http()))),
        }
    }
}

impl AuthLayer {
    fn authenticate(&self, req: &Request<Body>) -> Result<Option<Identity>, Status> {
        if let Some(value) = req.headers().get(http::header::AUTHORIZATION) {
            let Some(tokens) = &self.tokens else {
                return Err(Status::unauthenticated(
                    "this server does not accept bearer tokens; authenticate with a client certificate",
                ));
            };
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or_else(|| {
                    Status::unauthenticated("authorization header must be `Bearer <token>`")
                })?;
            return tokens
                .verify(token.trim())
                .map(Some)
                .ok_or_else(|| Status::unauthenticated("bearer token is not valid"));
        }
        Ok(req
            .extensions()
            .get::<ConnectionInfo>()
            .and_then(|c| c.peer_identity().cloned()))
    }

    fn authorize(&self, path: &str, identity: Option<&Identity>) -> Result<(), Status> {
        match self.policy.decide(path, identity.map(Identity::principal)) {
            Decision::Allow => Ok(()),
            Decision::NeedsIdentity => Err(Status::unauthenticated(format!(
                "{path} requires an authenticated caller; present a client certificate or a bearer token"
            ))),
            Decision::Deny { rule_exists: true } => Err(Status::permission_denied(format!(
                "`{}` is not allowed to call {path}",
                identity.map(Identity::principal).unwrap_or("anonymous")
            ))),
            Decision::Deny { rule_exists: false } => Err(Status::permission_denied(format!(
                "no rule allows calling {path} (the authorization policy denies by default)"
            ))),
        }
    }
}
