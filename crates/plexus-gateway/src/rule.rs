//! Reading `google.api.http` bindings from a method's options.

use http::Method;
use prost_reflect::{DynamicMessage, ExtensionDescriptor, MethodDescriptor, Value};

/// The fully qualified name of the method option plexus reads.
pub(crate) const HTTP_OPTION: &str = "google.api.http";

/// One HTTP binding of a method, as written in its `HttpRule`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleSpec {
    pub(crate) method: Method,
    pub(crate) path: String,
    /// `*`, a field name, or empty for no body.
    pub(crate) body: String,
    /// A response field name, or empty for the whole response.
    pub(crate) response_body: String,
}

impl RuleSpec {
    /// `GET /v1/x`, for messages.
    pub(crate) fn describe(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// Every binding of `method` (the rule itself, then its
/// `additional_bindings`), or an empty list when it has no option. The
/// error names what is wrong in the rule.
pub(crate) fn bindings(
    method: &MethodDescriptor,
    option: &ExtensionDescriptor,
) -> Result<Vec<RuleSpec>, String> {
    let options = method.options();
    if !options.has_extension(option) {
        return Ok(Vec::new());
    }
    let value = options.get_extension(option);
    let Some(rule) = value.as_message() else {
        return Err("the option is not an HttpRule message".to_owned());
    };
    let mut out = vec![spec(rule)?];
    for extra in list(rule, "additional_bindings") {
        let Some(extra) = extra.as_message() else {
            continue;
        };
        if !list(extra, "additional_bindings").is_empty() {
            return Err("additional_bindings cannot nest".to_owned());
        }
        out.push(spec(extra)?);
    }
    Ok(out)
}

fn spec(rule: &DynamicMessage) -> Result<RuleSpec, String> {
    let text = |name: &str| {
        rule.get_field_by_name(name)
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let mut pattern = None;
    for (name, method) in [
        ("get", Method::GET),
        ("put", Method::PUT),
        ("post", Method::POST),
        ("delete", Method::DELETE),
        ("patch", Method::PATCH),
    ] {
        if rule.has_field_by_name(name) {
            pattern = Some((method, text(name)));
        }
    }
    if rule.has_field_by_name("custom")
        && let Some(custom) = rule.get_field_by_name("custom")
        && let Some(custom) = custom.as_message()
    {
        let field = |name: &str| {
            custom
                .get_field_by_name(name)
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        };
        let kind = field("kind");
        let method = Method::from_bytes(kind.as_bytes())
            .map_err(|_| format!("custom kind `{kind}` is not an HTTP method"))?;
        pattern = Some((method, field("path")));
    }
    let Some((method, path)) = pattern else {
        return Err(
            "the rule has no pattern; set one of get, put, post, delete, patch or custom"
                .to_owned(),
        );
    };
    Ok(RuleSpec {
        method,
        path,
        body: text("body"),
        response_body: text("response_body"),
    })
}

fn list(message: &DynamicMessage, name: &str) -> Vec<Value> {
    message
        .get_field_by_name(name)
        .and_then(|v| v.as_list().map(<[Value]>::to_vec))
        .unwrap_or_default()
}
