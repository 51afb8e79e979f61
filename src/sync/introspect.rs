//! RFC 7662 introspection calls: one HTTP client per issuer with its timeouts, and request
//! coalescing, so that any number of concurrent requests carrying the same new token cause one
//! call to the authorization server. Answers go into the gateway's token cache; a failure of
//! the authorization server is never cached.

use crate::gateway::Gateway;
use crate::token::{self, Answer, TokenError, TokenHash};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::OnceCell;

type Outcome = Option<Answer>;

pub struct Introspector {
    gateway: Arc<Gateway>,
    /// One client per issuer (index), `None` for issuers without introspection.
    clients: Vec<Option<reqwest::Client>>,
    in_flight: Mutex<HashMap<TokenHash, Arc<OnceCell<Outcome>>>>,
}

/// Why one call gave no answer.
enum CallError {
    Timeout,
    Failed,
}

/// `application/x-www-form-urlencoded` encoding of one value (RFC 6749 §2.3.1 asks the same
/// for the client id and secret in HTTP Basic).
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Introspector {
    pub fn new(gateway: Arc<Gateway>) -> Introspector {
        let clients = gateway
            .issuers
            .iter()
            .map(|i| {
                i.introspection.as_ref().map(|r| {
                    reqwest::Client::builder()
                        .connect_timeout(r.connect_timeout)
                        .timeout(r.timeout)
                        .redirect(reqwest::redirect::Policy::none())
                        .build()
                        .expect("HTTP client")
                })
            })
            .collect();
        Introspector {
            gateway,
            clients,
            in_flight: Mutex::default(),
        }
    }

    /// The answer for `token`, asking the authorization server at most once for all
    /// concurrent callers; `None` when no issuer could answer.
    pub async fn introspect(&self, token: &str) -> Outcome {
        let key = token::hash(token);
        let cell = self
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default()
            .clone();
        let led = AtomicBool::new(false);
        let outcome = cell
            .get_or_init(|| {
                led.store(true, Ordering::Relaxed);
                self.ask(token, key)
            })
            .await
            .clone();
        if led.load(Ordering::Relaxed) {
            self.in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
        } else {
            self.gateway.metrics.introspection_coalesced.inc();
        }
        outcome
    }

    /// Issuers that may own an opaque token: those whose prefix it has, else those without a
    /// prefix, in configuration order.
    fn candidates(&self, token: &str) -> Vec<usize> {
        let issuers = &self.gateway.issuers;
        let with_introspection =
            || (0..issuers.len()).filter(|&i| issuers[i].introspection.is_some());
        let prefixed: Vec<usize> = with_introspection()
            .filter(|&i| {
                issuers[i]
                    .token_prefix
                    .as_deref()
                    .is_some_and(|p| token.starts_with(p))
            })
            .collect();
        if !prefixed.is_empty() {
            return prefixed;
        }
        with_introspection()
            .filter(|&i| issuers[i].token_prefix.is_none())
            .collect()
    }

    async fn ask(&self, token: &str, key: TokenHash) -> Outcome {
        let gw = &self.gateway;
        let mut unreachable = false;
        let mut refusal = TokenError::Inactive;
        for i in self.candidates(token) {
            let now = token::unix_now();
            match self.call(i, token).await {
                Ok(answer) => {
                    let max_ttl = gw.cache.max_ttl().as_secs();
                    let rules = gw.issuers[i].introspection.as_ref().expect("candidate");
                    match token::judge_introspection(
                        &answer,
                        i,
                        &gw.issuers[i],
                        rules,
                        &gw.principals,
                        now,
                        max_ttl,
                    ) {
                        Ok(p) => {
                            let p = Arc::new(p);
                            gw.cache.insert_valid(key, p.clone(), now);
                            return Some(Answer::Valid(p));
                        }
                        Err(TokenError::Inactive) => {}
                        Err(e) => refusal = e,
                    }
                }
                Err(_) => unreachable = true,
            }
        }
        if unreachable && refusal == TokenError::Inactive {
            // Some issuer could not say: fail closed with a 503, and remember nothing.
            return None;
        }
        gw.cache.insert_invalid(key, refusal);
        Some(Answer::Invalid(refusal))
    }

    async fn call(&self, issuer: usize, token: &str) -> Result<Map<String, Value>, CallError> {
        let gw = &self.gateway;
        let i = &gw.issuers[issuer];
        let rules = i.introspection.as_ref().ok_or(CallError::Failed)?;
        let client = self.clients[issuer].as_ref().ok_or(CallError::Failed)?;
        let count = |result: &str| {
            gw.metrics
                .introspections
                .with_label_values(&[&i.id, result])
                .inc()
        };
        let Some(endpoint) = i.introspection_endpoint() else {
            count("error");
            tracing::warn!(issuer = %i.id, "no introspection endpoint (not configured, not discovered yet)");
            return Err(CallError::Failed);
        };
        let mut form = format!("token={}&token_type_hint=access_token", form_encode(token));
        let mut req = client
            .post(endpoint)
            .header(http::header::ACCEPT, "application/json");
        if rules.post_credentials {
            form.push_str(&format!(
                "&client_id={}&client_secret={}",
                form_encode(&rules.client_id),
                form_encode(&rules.client_secret)
            ));
        } else {
            req = req.basic_auth(
                form_encode(&rules.client_id),
                Some(form_encode(&rules.client_secret)),
            );
        }
        let start = Instant::now();
        let sent = req
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form)
            .send()
            .await;
        let result = match sent {
            Ok(resp) if resp.status().is_success() => {
                resp.json::<Map<String, Value>>().await.map_err(|e| {
                    if e.is_timeout() {
                        CallError::Timeout
                    } else {
                        CallError::Failed
                    }
                })
            }
            Ok(resp) => {
                tracing::warn!(issuer = %i.id, status = %resp.status(), "introspection refused");
                Err(CallError::Failed)
            }
            Err(e) if e.is_timeout() => Err(CallError::Timeout),
            Err(e) => {
                tracing::warn!(issuer = %i.id, "introspection failed: {e}");
                Err(CallError::Failed)
            }
        };
        gw.metrics
            .introspection_seconds
            .with_label_values(&[&i.id])
            .observe(start.elapsed().as_secs_f64());
        match &result {
            Ok(a) if a.get("active") == Some(&Value::Bool(true)) => count("active"),
            Ok(_) => count("inactive"),
            Err(CallError::Timeout) => count("timeout"),
            Err(CallError::Failed) => count("error"),
        }
        result
    }
}
