//! What one replica fetched and the others read instead of fetching it: introspection
//! answers (`share_introspection`) and organization policy documents from a URL. Each is
//! sealed and bound to its key name and to what it is about — an answer to its issuer's
//! `iss` and introspection endpoint (the key name carries a digest of both, so two
//! deployments or two issuers never read each other's), a document to its source URL (the key
//! name carries a digest of it: a URL with credentials is never a key name) — and older ones
//! are refused: an answer older than the cache would keep it, a document older than three
//! refreshes.

use super::Cluster;
use super::seal::now_ms;
use serde_json::{Map, Value};
use std::time::Duration;

/// Whose introspection answer it is: the issuer's `iss` and the endpoint that answered.
pub struct IssuerIdentity<'a> {
    pub iss: &'a str,
    pub endpoint: &'a str,
}

impl Cluster {
    fn answer_key(&self, issuer: &IssuerIdentity, token_digest: &str) -> (String, String) {
        let key = self.key(&format!(
            "introspection:{}:{token_digest}",
            super::digest(&[issuer.iss, issuer.endpoint])
        ));
        let binding = format!("{key}\0{}\0{}", issuer.iss, issuer.endpoint);
        (key, binding)
    }

    /// The introspection answer another replica got from `issuer` for the token whose
    /// SHA-256 is `token_digest` (`Some(None)`: the provider did not know the token), written
    /// within `max_age`; `None` when there is none (or Redis cannot say, or it did not open).
    pub async fn shared_answer(
        &self,
        issuer: &IssuerIdentity<'_>,
        token_digest: &str,
        max_age: Duration,
    ) -> Option<Option<Map<String, Value>>> {
        let (key, binding) = self.answer_key(issuer, token_digest);
        let text = match self.get_bounded(&key).await.ok()?? {
            Ok(t) => t,
            Err(e) => {
                self.rejected("answer", &key, e);
                return None;
            }
        };
        let opened = match self.seal.open(&binding, &text) {
            Ok(o) => o,
            Err(e) => {
                self.rejected("answer", &key, e);
                return None;
            }
        };
        if now_ms().saturating_sub(opened.at_ms) > max_age.as_millis() as u64 {
            self.rejected("answer", &key, "older than the cache would keep it");
            return None;
        }
        let stored: Value = serde_json::from_str(&opened.body).ok()?;
        match stored.get("answer")? {
            Value::Object(m) => Some(Some(m.clone())),
            _ => Some(None),
        }
    }

    /// Shares an introspection answer for `ttl` (never the token: a provider that echoes it,
    /// as GitHub does, has it removed first).
    pub async fn keep_answer(
        &self,
        issuer: &IssuerIdentity<'_>,
        token_digest: &str,
        answer: &Option<Map<String, Value>>,
        ttl: Duration,
    ) {
        let answer = answer.as_ref().map(|a| {
            let mut a = a.clone();
            a.remove("token");
            Value::Object(a)
        });
        let body = serde_json::json!({ "answer": answer }).to_string();
        let (key, binding) = self.answer_key(issuer, token_digest);
        let sealed = self.seal.seal(&binding, now_ms(), &body);
        if let Ok(mut conn) = self.connection().await {
            let _ = redis::cmd("SET")
                .arg(&key)
                .arg(sealed)
                .arg("PX")
                .arg(ttl.as_millis().max(1) as u64)
                .query_async::<()>(&mut conn)
                .await;
        }
    }

    fn document_key(&self, url: &str) -> (String, String) {
        let key = self.key(&format!("shared:organizations:{}", super::digest(&[url])));
        let binding = format!("{key}\0{url}");
        (key, binding)
    }

    /// The policy document another replica fetched from `url`, written within `max_age`.
    pub async fn shared_text(&self, url: &str, max_age: Duration) -> Option<String> {
        let (key, binding) = self.document_key(url);
        let text = match self.get_bounded(&key).await.ok()?? {
            Ok(t) => t,
            Err(e) => {
                self.rejected("document", &key, e);
                return None;
            }
        };
        match self.seal.open(&binding, &text) {
            Ok(o) if now_ms().saturating_sub(o.at_ms) <= max_age.as_millis() as u64 => Some(o.body),
            Ok(_) => {
                self.rejected("document", &key, "older than three refreshes");
                None
            }
            Err(e) => {
                self.rejected("document", &key, e);
                None
            }
        }
    }

    /// Shares the document fetched from `url` (the last one written is the one read).
    pub async fn keep_text(&self, url: &str, text: &str) {
        let (key, binding) = self.document_key(url);
        let sealed = self.seal.seal(&binding, now_ms(), text);
        if let Ok(mut conn) = self.connection().await {
            let _ = redis::cmd("SET")
                .arg(&key)
                .arg(sealed)
                .query_async::<()>(&mut conn)
                .await;
        }
    }
}
