//! Organization membership asked of the issuer's API with the user's own token (GitHub's
//! "Get an organization membership for the authenticated user"). Coalesced per token and
//! organization, bounded by the issuer's call slots and breaker like introspection; an
//! answer is kept for the issuer's `membership_ttl`, a failure is not kept (503).

use super::Introspector;
use super::dialect::GITHUB_API_VERSION;
use crate::token::{Membership, TokenHash, membership_path, read_membership};
use http::header::ACCEPT;
use std::time::Instant;

impl Introspector {
    /// Asks `issuer` whether the user of `token` is a member of `org`, and remembers the
    /// answer; remembers nothing when the issuer could not answer.
    pub async fn membership(&self, token: &str, digest: TokenHash, issuer: usize, org: &str) {
        let key = (digest, org.to_ascii_lowercase());
        self.memberships_in_flight
            .run(
                key,
                || self.ask_membership(token, digest, issuer, org),
                || {},
            )
            .await
    }

    async fn ask_membership(&self, token: &str, key: TokenHash, issuer: usize, org: &str) {
        let i = &self.issuers[issuer];
        let (Some(rules), Some(client)) = (i.introspection.as_ref(), &self.clients[issuer]) else {
            return;
        };
        let count = |result: &str| {
            self.metrics
                .memberships
                .with_label_values(&[&i.id, result])
                .inc()
        };
        let remember = |member: Membership| {
            count(match member {
                Membership::Member => "member",
                Membership::NotMember => "not_member",
                Membership::AppNotApproved => "app_not_approved",
                Membership::SsoRequired => "sso_required",
            });
            self.memberships
                .insert(key, org, member, rules.membership_ttl);
        };
        // A name that is no GitHub login is nobody's organization, and never reaches a URL.
        let Some(path) = membership_path(&org.to_ascii_lowercase()) else {
            return remember(Membership::NotMember);
        };
        if !self.breakers[issuer]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .allows(Instant::now())
        {
            return count("circuit_open");
        }
        let Ok(_slot) = self.slots[issuer].try_acquire() else {
            self.metrics
                .refused
                .with_label_values(&["concurrency"])
                .inc();
            return;
        };
        let Some(api) = i.introspection_endpoint(&self.issuer_states[issuer]) else {
            return count("error");
        };
        let sent = client
            .get(format!("{}{path}", api.trim_end_matches('/')))
            .bearer_auth(token)
            .header(ACCEPT, "application/vnd.github+json")
            .header("x-github-api-version", GITHUB_API_VERSION)
            .send()
            .await;
        let resp = match sent {
            Ok(resp) => resp,
            Err(e) => {
                tracing::warn!(issuer = %i.id, "membership check failed: {e}");
                return count("error");
            }
        };
        let status = resp.status().as_u16();
        let sso = resp
            .headers()
            .get("x-github-sso")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = super::super::read_body(resp).await.unwrap_or_default();
        match read_membership(status, sso.as_deref(), &body) {
            Some(member) => remember(member),
            None => {
                tracing::warn!(issuer = %i.id, status, "membership check: no answer");
                count("error")
            }
        }
    }
}
