//! Route path patterns: `/orgs/{org}/repos`, catch-all `/admin/{*rest}`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Static(String),
    /// One non-empty segment, captured under this name.
    Param(String),
    /// One or more remaining segments (must be last), captured under this name.
    CatchAll(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub segments: Vec<Segment>,
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.segments {
            match s {
                Segment::Static(v) => write!(f, "/{v}")?,
                Segment::Param(n) => write!(f, "/{{{n}}}")?,
                Segment::CatchAll(n) => write!(f, "/{{*{n}}}")?,
            }
        }
        if self.segments.is_empty() {
            f.write_str("/")?;
        }
        Ok(())
    }
}

fn valid_static(s: &str) -> bool {
    // Only characters that normalization leaves as they are (and decodes to), so a pattern
    // can be compared byte for byte with a normalized path.
    s != "." && s != ".." && s.bytes().all(crate::request::is_segment_char)
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl Pattern {
    pub fn parse(raw: &str) -> Result<Pattern, String> {
        let rest = raw
            .strip_prefix('/')
            .ok_or_else(|| format!("path pattern `{raw}` must start with /"))?;
        let mut segments = Vec::new();
        if rest.is_empty() {
            return Ok(Pattern { segments });
        }
        let parts: Vec<&str> = rest.split('/').collect();
        let mut names = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let seg = if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}'))
            {
                let (catch_all, name) = match inner.strip_prefix('*') {
                    Some(n) => (true, n),
                    None => (false, inner),
                };
                if !valid_name(name) {
                    return Err(format!(
                        "path pattern `{raw}`: `{{{inner}}}` is not a valid parameter (letters, digits, _)"
                    ));
                }
                if names.contains(&name) {
                    return Err(format!(
                        "path pattern `{raw}`: parameter `{name}` appears twice"
                    ));
                }
                names.push(name);
                if catch_all {
                    if !last {
                        return Err(format!(
                            "path pattern `{raw}`: the catch-all `{{*{name}}}` must be the last segment"
                        ));
                    }
                    Segment::CatchAll(name.to_string())
                } else {
                    Segment::Param(name.to_string())
                }
            } else if part.is_empty() {
                if !last {
                    return Err(format!("path pattern `{raw}`: empty segment (`//`)"));
                }
                // A trailing slash is a segment of its own: `/a/` differs from `/a`.
                Segment::Static(String::new())
            } else if let Some(name) = part.strip_prefix(':').filter(|n| !n.is_empty()) {
                // Express, Kong and Envoy users write this; it would be literal text here.
                return Err(format!(
                    "path pattern `{raw}`: `{part}` would match the text `{part}`; write `{{{name}}}` for one segment"
                ));
            } else if part.contains('*') {
                return Err(format!(
                    "path pattern `{raw}`: `{part}` would match the text `{part}`; write `{{name}}` for one segment or `{{*rest}}` (last) for the rest of the path"
                ));
            } else if valid_static(part) {
                Segment::Static(part.to_string())
            } else {
                return Err(format!(
                    "path pattern `{raw}`: segment `{part}` has characters that requests are normalized away from (%, ;, \\, {{, }}, dot-segments)"
                ));
            };
            segments.push(seg);
        }
        Ok(Pattern { segments })
    }

    /// True when every path that `other` matches is matched by `self` too.
    pub fn covers(&self, other: &Pattern) -> bool {
        let (a, b) = (&self.segments, &other.segments);
        for (i, sa) in a.iter().enumerate() {
            match sa {
                Segment::CatchAll(_) => return b.len() > i,
                _ if i >= b.len() => return false,
                Segment::Static(v) => {
                    if b[i] != Segment::Static(v.clone()) {
                        return false;
                    }
                }
                Segment::Param(_) => match &b[i] {
                    Segment::Static(v) if v.is_empty() => return false,
                    Segment::Static(_) | Segment::Param(_) => {}
                    Segment::CatchAll(_) => return false,
                },
            }
        }
        a.len() == b.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_routers_wildcards_are_refused_with_the_syntax_to_use() {
        let e = Pattern::parse("/orgs/:org/repos").unwrap_err();
        assert!(e.contains("write `{org}` for one segment"), "{e}");
        let e = Pattern::parse("/files/*").unwrap_err();
        assert!(
            e.contains("`{*rest}` (last) for the rest of the path"),
            "{e}"
        );
        let e = Pattern::parse("/files/*.json").unwrap_err();
        assert!(e.contains("would match the text `*.json`"), "{e}");
        // A colon inside a segment is text, as requests send it.
        assert!(Pattern::parse("/v1/things:batch").is_ok());
    }

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }

    #[test]
    fn patterns_round_trip_through_display() {
        for s in ["/", "/a", "/orgs/{org}/repos", "/admin/{*rest}", "/a/"] {
            assert_eq!(p(s).to_string(), s);
        }
    }

    #[test]
    fn malformed_patterns_are_rejected_with_the_reason() {
        assert!(
            Pattern::parse("a")
                .unwrap_err()
                .contains("must start with /")
        );
        assert!(
            Pattern::parse("/{*x}/y")
                .unwrap_err()
                .contains("last segment")
        );
        assert!(Pattern::parse("/{a}/{a}").unwrap_err().contains("twice"));
        assert!(
            Pattern::parse("/a//b")
                .unwrap_err()
                .contains("empty segment")
        );
        assert!(Pattern::parse("/a%2Fb").is_err());
        assert!(Pattern::parse("/a/../b").is_err());
        assert!(Pattern::parse("/{a-b}").is_err());
    }

    #[test]
    fn coverage_follows_segment_kinds() {
        assert!(p("/orgs/{org}/repos").covers(&p("/orgs/acme/repos")));
        assert!(!p("/orgs/acme/repos").covers(&p("/orgs/{org}/repos")));
        assert!(p("/{*all}").covers(&p("/admin/{*rest}")));
        assert!(p("/admin/{*rest}").covers(&p("/admin/x/{y}")));
        assert!(!p("/admin/{*rest}").covers(&p("/admin")));
        assert!(!p("/a/{x}").covers(&p("/a/")));
        assert!(!p("/a").covers(&p("/a/b")));
    }
}
