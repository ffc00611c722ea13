//! Attribute checks shared by every way of making a [`Message`](super::Message).

use super::MessageParts;
use crate::error::{Error, excerpt};

/// The most headers one message may carry.
pub const MAX_HEADERS: usize = 64;
/// The longest header name, in bytes.
pub const MAX_HEADER_NAME_LEN: usize = 128;
/// The longest header value, in bytes.
pub const MAX_HEADER_VALUE_LEN: usize = 4096;
/// The longest `id`, `source`, `type`, `subject`, `datacontenttype` or `key`, in bytes.
pub const MAX_ATTRIBUTE_LEN: usize = 2048;

/// Header-name prefixes reserved for the CloudEvents protocol bindings.
const RESERVED_PREFIXES: [&str; 3] = ["ce-", "ce_", "cloudevents:"];

pub(super) fn parts(p: &MessageParts) -> Result<(), Error> {
    required("id", &p.id)?;
    required("source", &p.source)?;
    required("type", &p.ty)?;
    if let Some(subject) = &p.subject {
        required("subject", subject)?;
    }
    if let Some(key) = &p.key {
        required("key", key)?;
    }
    if let Some(ct) = &p.data_content_type {
        media_type(ct)?;
    }
    if p.headers.len() > MAX_HEADERS {
        return Err(Error::attribute(
            "headers",
            format!(
                "{} headers given, at most {MAX_HEADERS} are allowed; move bulk data into the payload",
                p.headers.len()
            ),
        ));
    }
    for (name, value) in &p.headers {
        header(name, value)?;
    }
    Ok(())
}

fn required(attribute: &'static str, value: &str) -> Result<(), Error> {
    if value.is_empty() {
        return Err(Error::attribute(attribute, "must not be empty"));
    }
    if value.len() > MAX_ATTRIBUTE_LEN {
        return Err(Error::attribute(
            attribute,
            format!(
                "{} bytes long, at most {MAX_ATTRIBUTE_LEN} are allowed",
                value.len()
            ),
        ));
    }
    if has_control(value) {
        return Err(Error::attribute(
            attribute,
            format!(
                "`{}` contains a control character",
                excerpt(value).escape_debug()
            ),
        ));
    }
    Ok(())
}

/// Whether `value` holds a control character (C0, DEL or C1). One pass
/// over the bytes settles ASCII text, the common case; text with other
/// characters is decoded.
fn has_control(value: &str) -> bool {
    let (mut ascii_control, mut non_ascii) = (false, false);
    for b in value.bytes() {
        ascii_control |= b < 0x20 || b == 0x7f;
        non_ascii |= b >= 0x80;
    }
    ascii_control || (non_ascii && value.chars().any(char::is_control))
}

fn media_type(value: &str) -> Result<(), Error> {
    required("datacontenttype", value)?;
    let essence = value.split(';').next().unwrap_or_default().trim();
    let is_token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match essence.split_once('/') {
        Some((ty, sub)) if is_token(ty) && is_token(sub) => Ok(()),
        _ => Err(Error::attribute(
            "datacontenttype",
            format!(
                "`{}` is not a media type; expected e.g. application/json",
                excerpt(value)
            ),
        )),
    }
}

fn header(name: &str, value: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > MAX_HEADER_NAME_LEN {
        return Err(Error::attribute(
            "header",
            format!(
                "header names must be 1 to {MAX_HEADER_NAME_LEN} bytes, got {}",
                name.len()
            ),
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
    {
        return Err(Error::attribute(
            "header",
            format!(
                "name `{}` must use only lowercase letters, digits, `-`, `_` and `.`",
                excerpt(name).escape_debug()
            ),
        ));
    }
    if let Some(prefix) = RESERVED_PREFIXES.iter().find(|p| name.starts_with(**p)) {
        return Err(Error::attribute(
            "header",
            format!(
                "name `{name}` starts with `{prefix}`, which is reserved for CloudEvents attributes"
            ),
        ));
    }
    if value.len() > MAX_HEADER_VALUE_LEN {
        return Err(Error::attribute(
            "header",
            format!(
                "value of `{name}` is {} bytes, at most {MAX_HEADER_VALUE_LEN} are allowed",
                value.len()
            ),
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(Error::attribute(
            "header",
            format!("value of `{name}` contains a control character"),
        ));
    }
    Ok(())
}
