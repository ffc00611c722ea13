//! Path templates of `google.api.http` bindings: parsing and matching.
//!
//! ```text
//! Template = "/" Segments [ ":" Verb ]
//! Segments = Segment { "/" Segment }
//! Segment  = "*" | "**" | LITERAL | "{" FieldPath [ "=" Segments ] "}"
//! ```
//!
//! `*` matches one non-empty segment, `**` the rest of the path (zero or
//! more segments; it must come last). `{field}` is `{field=*}`.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

/// One segment of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// Matches exactly this (percent-decoded) text.
    Literal(String),
    /// `*`: one non-empty segment.
    Any,
    /// `**`: every remaining segment.
    Rest,
}

/// A variable: the field it sets and the segments it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Variable {
    /// The dotted field path, e.g. `book.name`.
    pub(crate) field: String,
    /// Index of its first segment.
    pub(crate) start: usize,
    /// Index one past its last segment.
    pub(crate) end: usize,
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pub(crate) segments: Vec<Segment>,
    pub(crate) variables: Vec<Variable>,
    pub(crate) verb: Option<String>,
}

/// What a matched path binds: one raw (still percent-encoded) value per
/// variable, in the order of [`Template::variables`].
#[derive(Debug)]
pub(crate) struct Captures<'p> {
    pub(crate) values: Vec<Capture<'p>>,
}

/// The raw text a variable matched, and whether it spans several segments.
#[derive(Debug)]
pub(crate) struct Capture<'p> {
    pub(crate) raw: Cow<'p, str>,
    pub(crate) multi_segment: bool,
}

impl Capture<'_> {
    /// The value, percent-decoded. A variable spanning several segments
    /// keeps `%2F` encoded, so the slashes that separate its segments stay
    /// distinguishable from a slash inside one.
    pub(crate) fn decode(&self) -> Result<String, std::str::Utf8Error> {
        if !self.multi_segment {
            return percent_decode_str(&self.raw)
                .decode_utf8()
                .map(Cow::into_owned);
        }
        let mut out = String::with_capacity(self.raw.len());
        for (i, piece) in self.raw.split("%2F").enumerate() {
            if i > 0 {
                out.push_str("%2F");
            }
            for (j, part) in piece.split("%2f").enumerate() {
                if j > 0 {
                    out.push_str("%2f");
                }
                out.push_str(&percent_decode_str(part).decode_utf8()?);
            }
        }
        Ok(out)
    }
}

impl Template {
    /// Parses `text`; the error says what is wrong and where.
    pub(crate) fn parse(text: &str) -> Result<Template, String> {
        let parser = Parser {
            text,
            pos: 0,
            segments: Vec::new(),
            variables: Vec::new(),
        };
        parser.template()
    }

    /// Matches a request path (as sent: percent-encoded, without the query).
    pub(crate) fn matches<'p>(&self, path: &'p str) -> Option<Captures<'p>> {
        let path = match &self.verb {
            Some(verb) => {
                let stripped = path.strip_suffix(verb.as_str())?;
                stripped.strip_suffix(':')?
            }
            None => path,
        };
        let rest = path.strip_prefix('/')?;
        let parts: Vec<&str> = rest.split('/').collect();
        let mut i = 0;
        for segment in &self.segments {
            match segment {
                Segment::Literal(literal) => {
                    let part = parts.get(i)?;
                    if percent_decode_str(part).decode_utf8_lossy() != literal.as_str() {
                        return None;
                    }
                    i += 1;
                }
                Segment::Any => {
                    if parts.get(i)?.is_empty() {
                        return None;
                    }
                    i += 1;
                }
                Segment::Rest => i = parts.len(),
            }
        }
        if i != parts.len() {
            return None;
        }
        let values = self
            .variables
            .iter()
            .map(|v| {
                let end = if v.end == self.segments.len() && self.ends_with_rest() {
                    parts.len()
                } else {
                    v.end
                };
                let covered = &parts[v.start.min(end)..end];
                let raw = match covered {
                    [one] => Cow::Borrowed(*one),
                    many => Cow::Owned(many.join("/")),
                };
                Capture {
                    raw,
                    multi_segment: v.end - v.start > 1 || self.segments[v.end - 1] == Segment::Rest,
                }
            })
            .collect();
        Some(Captures { values })
    }

    fn ends_with_rest(&self) -> bool {
        self.segments.last() == Some(&Segment::Rest)
    }

    /// Number of literal segments (plus one for a verb): more is more specific.
    pub(crate) fn specificity(&self) -> (bool, usize, bool) {
        let literals = self
            .segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count();
        (self.verb.is_some(), literals, !self.ends_with_rest())
    }

    /// The OpenAPI form of the path: variables as `{field.path}`, other
    /// segments as written.
    pub(crate) fn openapi_path(&self) -> String {
        let mut out = String::new();
        let mut i = 0;
        while i < self.segments.len() {
            out.push('/');
            if let Some(var) = self.variables.iter().find(|v| v.start == i) {
                out.push('{');
                out.push_str(&var.field);
                out.push('}');
                i = var.end;
                continue;
            }
            match &self.segments[i] {
                Segment::Literal(l) => out.push_str(l),
                Segment::Any => out.push('*'),
                Segment::Rest => out.push_str("**"),
            }
            i += 1;
        }
        if let Some(verb) = &self.verb {
            out.push(':');
            out.push_str(verb);
        }
        out
    }

    /// The segments a variable must match, as written (`*` for a plain
    /// `{field}`).
    pub(crate) fn variable_pattern(&self, var: &Variable) -> String {
        self.segments[var.start..var.end]
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => l.as_str(),
                Segment::Any => "*",
                Segment::Rest => "**",
            })
            .collect::<Vec<_>>()
            .join("/")
    }
}

struct Parser<'t> {
    text: &'t str,
    pos: usize,
    segments: Vec<Segment>,
    variables: Vec<Variable>,
}

impl Parser<'_> {
    fn template(mut self) -> Result<Template, String> {
        if !self.eat('/') {
            return Err("a path template starts with `/`".to_owned());
        }
        self.segments_until(&[':'], true)?;
        let verb = if self.eat(':') {
            let verb = &self.text[self.pos..];
            if verb.is_empty() || verb.contains(['/', '{', '}', '*', ':']) {
                return Err(format!(
                    "invalid verb `:{verb}`: a verb is one literal at the end, e.g. `:search`"
                ));
            }
            self.pos = self.text.len();
            Some(verb.to_owned())
        } else {
            None
        };
        if self.pos != self.text.len() {
            return Err(self.unexpected());
        }
        let rest_at = self.segments.iter().position(|s| *s == Segment::Rest);
        if let Some(at) = rest_at
            && at + 1 != self.segments.len()
        {
            return Err("`**` must be the last segment of the path".to_owned());
        }
        Ok(Template {
            segments: self.segments,
            variables: self.variables,
            verb,
        })
    }

    fn segments_until(&mut self, stops: &[char], variables: bool) -> Result<(), String> {
        loop {
            self.segment(stops, variables)?;
            if !self.eat('/') {
                return Ok(());
            }
        }
    }

    fn segment(&mut self, stops: &[char], variables: bool) -> Result<(), String> {
        let rest = &self.text[self.pos..];
        if rest.starts_with("**") {
            self.pos += 2;
            self.segments.push(Segment::Rest);
        } else if rest.starts_with('*') {
            self.pos += 1;
            self.segments.push(Segment::Any);
        } else if rest.starts_with('{') {
            if !variables {
                return Err("variables cannot nest".to_owned());
            }
            self.variable()?;
        } else {
            let len = rest
                .find(|c: char| c == '/' || c == '{' || c == '}' || stops.contains(&c))
                .unwrap_or(rest.len());
            if len == 0 {
                return Err(self.unexpected());
            }
            let literal = percent_decode_str(&rest[..len])
                .decode_utf8()
                .map_err(|_| format!("literal `{}` is not UTF-8", &rest[..len]))?;
            if literal.contains('*') {
                return Err(format!(
                    "literal `{literal}` contains `*`; a wildcard is a whole segment"
                ));
            }
            self.segments.push(Segment::Literal(literal.into_owned()));
            self.pos += len;
        }
        Ok(())
    }

    fn variable(&mut self) -> Result<(), String> {
        self.pos += 1;
        let rest = &self.text[self.pos..];
        let len = rest
            .find(['=', '}'])
            .ok_or_else(|| "unclosed `{`".to_owned())?;
        let field = &rest[..len];
        let valid_ident = |s: &str| {
            let mut chars = s.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if !field.split('.').all(valid_ident) {
            return Err(format!(
                "`{field}` is not a field path; expected names separated by dots, e.g. `book.name`"
            ));
        }
        self.pos += len;
        let start = self.segments.len();
        if self.eat('=') {
            self.segments_until(&['}'], false)?;
        } else {
            self.segments.push(Segment::Any);
        }
        if !self.eat('}') {
            return Err(format!("variable `{field}` is not closed by `}}`"));
        }
        self.variables.push(Variable {
            field: field.to_owned(),
            start,
            end: self.segments.len(),
        });
        Ok(())
    }

    fn eat(&mut self, c: char) -> bool {
        if self.text[self.pos..].starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn unexpected(&self) -> String {
        match self.text[self.pos..].chars().next() {
            Some(c) => format!("unexpected `{c}` at byte {}", self.pos),
            None => "unexpected end of template".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(t: &Template, path: &str) -> Option<Vec<String>> {
        t.matches(path)
            .map(|c| c.values.iter().map(|v| v.decode().unwrap()).collect())
    }

    #[test]
    fn simple_variables_match_one_segment() {
        let t = Template::parse("/v1/shelves/{shelf}/books/{book_id}").unwrap();
        assert_eq!(
            values(&t, "/v1/shelves/s1/books/b%202"),
            Some(vec!["s1".to_owned(), "b 2".to_owned()])
        );
        assert_eq!(values(&t, "/v1/shelves/s1/books"), None);
        assert_eq!(values(&t, "/v1/shelves//books/b"), None);
        assert_eq!(values(&t, "/v1/shelves/s1/books/b/extra"), None);
        assert_eq!(t.openapi_path(), "/v1/shelves/{shelf}/books/{book_id}");
    }

    #[test]
    fn multi_segment_variables_keep_encoded_slashes() {
        let t = Template::parse("/v1/{book.name=shelves/*/books/*}").unwrap();
        assert_eq!(t.variables[0].field, "book.name");
        assert_eq!(
            values(&t, "/v1/shelves/a/books/b%2Fc"),
            Some(vec!["shelves/a/books/b%2Fc".to_owned()])
        );
        assert_eq!(values(&t, "/v1/shelves/a/volumes/b"), None);
        assert_eq!(t.openapi_path(), "/v1/{book.name}");
        assert_eq!(t.variable_pattern(&t.variables[0]), "shelves/*/books/*");
    }

    #[test]
    fn rest_matches_zero_or_more_segments() {
        let t = Template::parse("/v1/files/{path=**}").unwrap();
        assert_eq!(
            values(&t, "/v1/files/a/b/c.txt"),
            Some(vec!["a/b/c.txt".into()])
        );
        assert_eq!(values(&t, "/v1/files/x"), Some(vec!["x".into()]));
        assert_eq!(values(&t, "/v1/other/x"), None);
    }

    #[test]
    fn verbs_are_matched_and_stripped() {
        let t = Template::parse("/v1/shelves/{shelf}:watch").unwrap();
        assert_eq!(t.verb.as_deref(), Some("watch"));
        assert_eq!(values(&t, "/v1/shelves/s1:watch"), Some(vec!["s1".into()]));
        assert_eq!(values(&t, "/v1/shelves/s1"), None);
        assert_eq!(values(&t, "/v1/shelves/s1:list"), None);
        let search = Template::parse("/v1/books:search").unwrap();
        assert!(search.matches("/v1/books:search").is_some());
        assert_eq!(search.openapi_path(), "/v1/books:search");
    }

    #[test]
    fn malformed_templates_are_refused_with_a_reason() {
        for (bad, needle) in [
            ("v1/x", "starts with `/`"),
            ("/v1/{name", "closed"),
            ("/v1/{name=a", "not closed"),
            ("/v1/{a=b/{c}}", "cannot nest"),
            ("/v1/**/x", "last segment"),
            ("/v1/{9x}", "not a field path"),
            ("/v1/x:", "invalid verb"),
            ("/v1/a*b", "wildcard"),
            ("/v1//x", "unexpected"),
        ] {
            let err = Template::parse(bad).unwrap_err();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }
}
