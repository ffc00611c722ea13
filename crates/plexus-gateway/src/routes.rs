//! The route table: every `google.api.http` binding compiled against its
//! method's messages, and the lookup of a request's route.

use http::uri::PathAndQuery;
use http::{HeaderValue, Method};
use prost_reflect::{FieldDescriptor, Kind, MethodDescriptor};
use tonic::Code;

use crate::bind::{self, FieldPath};
use crate::http_error::ApiError;
use crate::rule::RuleSpec;
use crate::template::{Captures, Template};

/// What the request body fills.
#[derive(Debug, Clone)]
pub(crate) enum BodyBinding {
    /// No body: every field comes from the path and the query.
    None,
    /// `body: "*"`: the whole request message.
    Whole,
    /// `body: "field"`: one top-level field.
    Field(FieldDescriptor),
}

/// One binding, ready to serve.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) spec: RuleSpec,
    pub(crate) template: Template,
    /// The field each template variable sets, in template order.
    pub(crate) variables: Vec<FieldPath>,
    pub(crate) body: BodyBinding,
    pub(crate) response_body: Option<FieldDescriptor>,
    pub(crate) rpc: MethodDescriptor,
    pub(crate) grpc_path: PathAndQuery,
    /// Index of the upstream channel serving the method.
    pub(crate) upstream: usize,
    /// Position of this binding among its method's bindings (0 for the
    /// rule itself).
    pub(crate) binding_index: usize,
}

impl Route {
    /// Compiles `spec` for `rpc`; the error says what is wrong.
    pub(crate) fn compile(
        rpc: &MethodDescriptor,
        spec: RuleSpec,
        upstream: usize,
        binding_index: usize,
    ) -> Result<Route, String> {
        if rpc.is_client_streaming() {
            return Err("client-streaming methods cannot be exposed over REST".to_owned());
        }
        let template = Template::parse(&spec.path)?;
        let input = rpc.input();
        let mut variables: Vec<FieldPath> = Vec::new();
        for var in &template.variables {
            let path = bind::resolve(&input, &var.field)
                .map_err(|e| format!("path variable `{}`: {e}", var.field))?;
            let leaf = path.leaf();
            if leaf.is_list() || leaf.is_map() {
                return Err(format!(
                    "path variable `{}` names a repeated field; it must be a single value",
                    var.field
                ));
            }
            if let Kind::Message(m) = leaf.kind()
                && m.package_name() != "google.protobuf"
            {
                return Err(format!(
                    "path variable `{}` names a message; bind one of its fields, e.g. `{}.name`",
                    var.field, var.field
                ));
            }
            if variables.iter().any(|v| v.overlaps(&path)) {
                return Err(format!("field `{}` is bound twice in the path", var.field));
            }
            variables.push(path);
        }
        let body = match spec.body.as_str() {
            "" => BodyBinding::None,
            "*" => BodyBinding::Whole,
            name => BodyBinding::Field(input.get_field_by_name(name).ok_or_else(|| {
                format!(
                    "body field `{name}` is not a field of {}; use a top-level field name or `*`",
                    input.full_name()
                )
            })?),
        };
        if spec.method == Method::GET && !matches!(body, BodyBinding::None) {
            return Err("a GET binding cannot take a body; remove `body`".to_owned());
        }
        let response_body = match spec.response_body.as_str() {
            "" => None,
            name => Some(rpc.output().get_field_by_name(name).ok_or_else(|| {
                format!(
                    "response_body `{name}` is not a field of {}",
                    rpc.output().full_name()
                )
            })?),
        };
        let grpc_path = PathAndQuery::try_from(format!(
            "/{}/{}",
            rpc.parent_service().full_name(),
            rpc.name()
        ))
        .map_err(|e| format!("cannot form the gRPC path: {e}"))?;
        Ok(Route {
            spec,
            template,
            variables,
            body,
            response_body,
            rpc: rpc.clone(),
            grpc_path,
            upstream,
            binding_index,
        })
    }

    /// Whether the method streams its responses.
    pub(crate) fn is_streaming(&self) -> bool {
        self.rpc.is_server_streaming()
    }

    /// Whether a query parameter may set the field at `path`: not when the
    /// body or a path variable already sets it.
    pub(crate) fn query_may_set(&self, path: &FieldPath) -> Result<(), String> {
        match &self.body {
            BodyBinding::Whole => {
                return Err("this route takes every field from the JSON body".to_owned());
            }
            BodyBinding::Field(f) if path.fields[0].number() == f.number() => {
                return Err(format!("`{}` is taken from the JSON body", f.name()));
            }
            _ => {}
        }
        if let Some(var) = self.variables.iter().find(|v| v.overlaps(path)) {
            return Err(format!("`{}` is taken from the path", var.proto_name()));
        }
        Ok(())
    }
}

/// Every route, most specific first.
#[derive(Debug, Default)]
pub(crate) struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// Adds a route; refuses a second one with the same method and template.
    pub(crate) fn add(&mut self, route: Route) -> Result<(), crate::Error> {
        if let Some(other) = self
            .routes
            .iter()
            .find(|r| r.spec.method == route.spec.method && r.template == route.template)
        {
            return Err(crate::Error::DuplicateRoute {
                binding: route.spec.describe(),
                first: other.rpc.full_name().to_owned(),
                second: route.rpc.full_name().to_owned(),
            });
        }
        self.routes.push(route);
        // Stable: among equally specific routes, the one declared first wins.
        self.routes
            .sort_by_key(|r| std::cmp::Reverse(r.template.specificity()));
        Ok(())
    }

    /// Every route, most specific first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }

    /// The route for a request, with what its path binds; 404 when no
    /// template matches the path, 405 (with `Allow`) when only other
    /// methods do.
    pub(crate) fn find<'p>(
        &self,
        method: &Method,
        path: &'p str,
    ) -> Result<(&Route, Captures<'p>), ApiError> {
        let mut allowed: Vec<&Method> = Vec::new();
        for route in &self.routes {
            let Some(captures) = route.template.matches(path) else {
                continue;
            };
            if route.spec.method == *method {
                return Ok((route, captures));
            }
            if !allowed.contains(&&route.spec.method) {
                allowed.push(&route.spec.method);
            }
        }
        if allowed.is_empty() {
            return Err(ApiError::new(
                Code::NotFound,
                format!("no route for {method} {path}; see /openapi.json for the routes"),
            ));
        }
        let allow: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
        let allow = allow.join(", ");
        Err(ApiError::new(
            Code::Unimplemented,
            format!("{method} is not allowed on {path}; allowed: {allow}"),
        )
        .with_status(http::StatusCode::METHOD_NOT_ALLOWED)
        .with_allow(HeaderValue::try_from(allow).ok()))
    }
}
