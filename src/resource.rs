//! RFC 9728 protected resource metadata: the documents the gateway publishes at
//! `/.well-known/oauth-protected-resource[/path]` for the resources it fronts, and the
//! `resource_metadata` URL each 401 challenge points to (RFC 9728 §5.1), chosen by the
//! request's path. Built once per configuration (`compile/resources.rs`); plain lookups here.

use bytes::Bytes;

/// The well-known path prefix (RFC 9728 §3).
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// One published resource.
#[derive(Debug, Clone)]
pub struct Published {
    /// The resource identifier's path without a trailing slash (`""` for the host's root):
    /// requests under it belong to the resource.
    pub prefix: String,
    /// Where the document is served: [`WELL_KNOWN`] followed by `prefix`.
    pub well_known: String,
    /// The document, rendered once.
    pub document: Bytes,
    /// `resource_metadata="…"`, ready to append to a challenge.
    pub challenge_parameter: String,
}

/// Every published resource, longest prefix first.
#[derive(Debug, Clone, Default)]
pub struct ProtectedResources {
    resources: Vec<Published>,
}

impl ProtectedResources {
    pub fn new(mut resources: Vec<Published>) -> ProtectedResources {
        resources.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        ProtectedResources { resources }
    }

    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    pub fn all(&self) -> &[Published] {
        &self.resources
    }

    /// The document served at `path`, when `path` is a resource's well-known URL.
    pub fn document_at(&self, path: &str) -> Option<&Bytes> {
        if !path.starts_with(WELL_KNOWN) {
            return None;
        }
        self.resources
            .iter()
            .find(|r| r.well_known == path)
            .map(|r| &r.document)
    }

    /// The `resource_metadata` parameter for a challenge to a request for `path`: the
    /// resource with the longest prefix that `path` lies under (segment-wise).
    pub fn challenge_for(&self, path: &str) -> Option<&str> {
        self.resources
            .iter()
            .find(|r| under(path, &r.prefix))
            .map(|r| r.challenge_parameter.as_str())
    }
}

/// Whether `path` is `prefix` or below it (`/v1` covers `/v1` and `/v1/x`, not `/v10`).
pub fn under(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || prefix.is_empty(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published(prefix: &str) -> Published {
        Published {
            prefix: prefix.into(),
            well_known: format!("{WELL_KNOWN}{prefix}"),
            document: Bytes::from(format!("{{\"resource\":\"https://r.example{prefix}\"}}")),
            challenge_parameter: format!(
                "resource_metadata=\"https://r.example{WELL_KNOWN}{prefix}\""
            ),
        }
    }

    #[test]
    fn the_longest_covering_prefix_names_the_metadata_and_documents_are_exact() {
        let r = ProtectedResources::new(vec![published(""), published("/v1")]);
        assert!(
            r.challenge_for("/v1/users")
                .unwrap()
                .ends_with("resource/v1\"")
        );
        assert!(r.challenge_for("/v1").unwrap().ends_with("resource/v1\""));
        assert!(r.challenge_for("/v10").unwrap().ends_with("resource\""));
        assert!(r.document_at(WELL_KNOWN).is_some());
        assert!(r.document_at(&format!("{WELL_KNOWN}/v1")).is_some());
        assert!(r.document_at(&format!("{WELL_KNOWN}/v2")).is_none());
        assert!(r.document_at("/v1").is_none());
        let only_v1 = ProtectedResources::new(vec![published("/v1")]);
        assert!(only_v1.challenge_for("/other").is_none());
    }
}
