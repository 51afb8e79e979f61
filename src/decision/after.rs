//! What happens to a decision once the pipeline made it, on routes that ask: report mode
//! (a refusal about the caller forwarded, kept as `would_refuse`), rate limits (a forward
//! takes from its buckets), and CORS preflights (matched to the route of the method they
//! ask about).

use super::{Decided, Gateway, Verdict};
use crate::answer::Refusal;
use crate::policy::{Caller, client_address};
use crate::request::{self, Head};
use crate::route::Lookup;
use std::sync::Arc;

impl Gateway {
    /// Report mode and rate limits, where routes have them (a configuration without either
    /// pays one test).
    #[inline]
    pub(super) fn settled(&self, head: &Head, decided: Decided) -> Decided {
        if !self.rules.reports_or_limits {
            return decided;
        }
        self.limited(head, self.reported(head, decided))
    }

    /// On a route in report mode, a refusal about the caller becomes a forward (with the
    /// identity found, if any; credentials that were not accepted removed), the refusal
    /// kept in `would_refuse`.
    fn reported(&self, head: &Head, mut decided: Decided) -> Decided {
        let Some(index) = decided.route else {
            return decided;
        };
        let route = &self.rules.routes[index];
        let refusal = match &decided.verdict {
            Verdict::Refuse(r) if route.report_only && r.is_about_the_caller() => r.clone(),
            _ => return decided,
        };
        // Matched once already: the same path and route again.
        let Ok(path) = request::normalize(head.uri.path()) else {
            return decided;
        };
        let Lookup::Found(m) = self.rules.table.lookup(head.host(), head.method, &path) else {
            return decided;
        };
        let forwarded = route
            .rewrite
            .as_ref()
            .map(|r| r.apply(path.as_str(), &m.params));
        let Verdict::Forward(mut f) = self
            .public(index, &path, forwarded, head.uri.query())
            .verdict
        else {
            return decided;
        };
        if let Some(p) = &decided.principal {
            f.principal = Some(p.clone());
            f.strip_credentials = false;
        }
        decided.verdict = Verdict::Forward(f);
        decided.need = None;
        decided.would_refuse = Some(refusal);
        decided
    }

    /// A request about to be forwarded takes one from each of its buckets (the global
    /// limits', then its route's); over one, it is a 429 and never reaches the upstream.
    fn limited(&self, head: &Head, mut decided: Decided) -> Decided {
        let (Some(index), Verdict::Forward(f)) = (decided.route, &decided.verdict) else {
            return decided;
        };
        let route_limits = &self.rules.routes[index].rate_limits;
        if self.rules.rate_limits.is_empty() && route_limits.is_empty() {
            return decided;
        }
        let caller = Caller {
            principal: f.principal.as_deref(),
            org: f.org.as_ref(),
            address: client_address(
                head.conn.peer.map(|p| p.ip()),
                head.headers,
                &self.rules.forward.trusted_proxies,
            ),
        };
        for limit in self.rules.rate_limits.iter().chain(route_limits) {
            if let Err(exceeded) = limit.check(&caller) {
                decided.verdict = Verdict::Refuse(Refusal::RateLimited(Box::new(exceeded)));
                return decided;
            }
        }
        decided
    }

    /// A CORS preflight (`OPTIONS` asking about `asked`): the route the real request would
    /// take, and its CORS rules, when it has some.
    pub fn preflight_route(
        &self,
        head: &Head,
        asked: &http::Method,
    ) -> Option<(usize, Arc<crate::cors::Cors>)> {
        // A preflight gets the framing checks every request gets (else it is decided, and
        // refused, as any request).
        request::check_framing(head, &self.rules.limits).ok()?;
        let path = request::normalize(head.uri.path()).ok()?;
        let host = self.rules.table.by_host().then(|| head.host()).flatten();
        let Lookup::Found(m) = self.rules.table.lookup(host, asked, &path) else {
            return None;
        };
        let cors = self.rules.routes[m.route].cors.clone()?;
        Some((m.route, cors))
    }

    /// A preflight the route's upstream answers: forwarded without authentication (a
    /// browser never sends credentials on one), like a public route's request.
    pub fn forward_preflight(&self, head: &Head, index: usize) -> Decided {
        let Ok(path) = request::normalize(head.uri.path()) else {
            return Decided::refuse(Some(index), Refusal::NotFound);
        };
        self.public(index, &path, None, head.uri.query())
    }
}
