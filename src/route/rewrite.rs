//! What path a route forwards: the matched (normalized) path as it is, without a prefix
//! (`strip_prefix: /api`), or a template filled with the match's parameters (`rewrite:
//! /v2/users/{id}`). Checked against the route's pattern at load, so a rewrite never produces
//! a path that normalization would change; applied after normalization and matching.

use super::pattern::{Pattern, Segment};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrite {
    /// Removes these leading static segments (`/api`).
    StripPrefix(String),
    /// `/`-separated pieces: text, or a parameter of the pattern.
    Template(Vec<Piece>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Param(String),
}

impl Rewrite {
    /// `strip_prefix`: the pattern must start with these static segments.
    pub fn strip(prefix: &str, pattern: &Pattern) -> Result<Rewrite, String> {
        let prefix = prefix.trim_end_matches('/');
        let wanted: Vec<&str> = prefix.split('/').skip(1).collect();
        if !prefix.starts_with('/') || wanted.is_empty() {
            return Err(format!(
                "strip_prefix `{prefix}` must be a path such as /api"
            ));
        }
        let leads = wanted
            .iter()
            .enumerate()
            .all(|(i, w)| matches!(pattern.segments.get(i), Some(Segment::Static(s)) if s == w));
        if !leads {
            return Err(format!(
                "strip_prefix `{prefix}` is not the start of the path pattern `{pattern}`: every request would keep it"
            ));
        }
        Ok(Rewrite::StripPrefix(prefix.to_string()))
    }

    /// `rewrite`: a path whose `{name}` and `{*name}` are parameters of the pattern.
    pub fn template(template: &str, pattern: &Pattern) -> Result<Rewrite, String> {
        let Some(rest) = template.strip_prefix('/') else {
            return Err(format!("rewrite `{template}` must start with /"));
        };
        let names: Vec<&str> = pattern
            .segments
            .iter()
            .filter_map(|s| match s {
                Segment::Param(n) | Segment::CatchAll(n) => Some(n.as_str()),
                Segment::Static(_) => None,
            })
            .collect();
        let mut pieces = Vec::new();
        for part in rest.split('/') {
            let name = part
                .strip_prefix('{')
                .and_then(|p| p.strip_suffix('}'))
                .map(|p| p.trim_start_matches('*'));
            match name {
                Some(n) if names.contains(&n) => pieces.push(Piece::Param(n.to_string())),
                Some(n) => {
                    return Err(format!(
                        "rewrite `{template}`: `{{{n}}}` is not a parameter of `{pattern}` (it has: {})",
                        names.join(", ")
                    ));
                }
                None if part.is_empty() || part.bytes().all(crate::request::is_segment_char) => {
                    pieces.push(Piece::Text(part.to_string()));
                }
                None => {
                    return Err(format!(
                        "rewrite `{template}`: segment `{part}` has characters a path would be normalized away from"
                    ));
                }
            }
        }
        Ok(Rewrite::Template(pieces))
    }

    /// The path to forward for `path` (normalized, matched) and its parameters.
    pub fn apply(&self, path: &str, params: &[(&str, &str)]) -> String {
        match self {
            Rewrite::StripPrefix(prefix) => match path.strip_prefix(prefix.as_str()) {
                Some("") => "/".into(),
                Some(rest) if rest.starts_with('/') => rest.into(),
                _ => path.into(),
            },
            Rewrite::Template(pieces) => {
                let mut out = String::with_capacity(path.len());
                for piece in pieces {
                    out.push('/');
                    match piece {
                        Piece::Text(t) => out.push_str(t),
                        Piece::Param(n) => {
                            let value = params.iter().find(|(k, _)| k == n).map_or("", |(_, v)| v);
                            out.push_str(value);
                        }
                    }
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }

    #[test]
    fn a_prefix_is_stripped_on_a_segment_boundary() {
        let r = Rewrite::strip("/api/", &p("/api/{*rest}")).unwrap();
        assert_eq!(r.apply("/api/users/1", &[]), "/users/1");
        assert_eq!(r.apply("/api", &[]), "/");
        let e = Rewrite::strip("/ap", &p("/api/{*rest}")).unwrap_err();
        assert!(e.contains("is not the start of the path pattern"), "{e}");
    }

    #[test]
    fn a_template_takes_the_patterns_parameters_and_nothing_else() {
        let pattern = p("/orgs/{org}/files/{*path}");
        let r = Rewrite::template("/v2/{org}/blobs/{path}", &pattern).unwrap();
        assert_eq!(
            r.apply(
                "/orgs/acme/files/a/b.txt",
                &[("org", "acme"), ("path", "a/b.txt")]
            ),
            "/v2/acme/blobs/a/b.txt"
        );
        let e = Rewrite::template("/v2/{team}", &pattern).unwrap_err();
        assert!(e.contains("`{team}` is not a parameter"), "{e}");
        assert!(Rewrite::template("v2", &pattern).is_err());
        assert!(Rewrite::template("/v2/a%2fb", &pattern).is_err());
    }
}
