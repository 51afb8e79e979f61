//! The one wrapper every request goes through, whichever way it came in: its span, its
//! decision (timed), its metrics under the front end's label, and its log line. A front
//! end maps its protocol to a [`Head`](crate::request::Head), asks [`Exchange::decide`], and
//! maps the outcome back; what is counted, traced and logged is decided here, once.

use crate::answer::{Outcome, Refusal, Rendered};
use crate::decision::{Decided, Verdict};
use crate::generation::Generation;
use crate::metrics::FrontEnd;
use crate::otel::{self, Kind, TraceContext};
use crate::request::Head;
use crate::requestlog::{self, Entry};
use http::{HeaderMap, HeaderValue, Method};
use opentelemetry::context::FutureExt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The route the request log names for an RFC 9728 document.
const METADATA_ROUTE: &str = "oauth-protected-resource";

/// One request or decision-endpoint call, from arrival to its log line.
pub struct Exchange {
    front_end: FrontEnd,
    generation: Arc<Generation>,
    start: Instant,
    entry: Entry,
    trace: Option<TraceContext>,
    /// The route the decision took.
    route: Option<usize>,
    /// The request is a gRPC call: refusals are rendered as gRPC statuses.
    grpc: bool,
}

/// What a request is, as it arrives, for its span and log line.
pub struct Arrival<'a> {
    pub method: &'a Method,
    /// The target's path as sent (the normalized one replaces it once decided).
    pub path: &'a str,
    pub client: Option<IpAddr>,
    /// The request's id (`ForwardPolicy::request_id`).
    pub request_id: HeaderValue,
    /// Headers a trace may be continued from: only those the peer was trusted to set.
    pub trace_parent: Option<&'a HeaderMap>,
    /// The declared body length.
    pub body_size: Option<u64>,
}

/// The largest index at most `max` that is a character boundary of `s`.
fn char_floor(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    (0..=max)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}

impl Exchange {
    /// Starts the exchange: its span (a child of `trace_parent`'s context, else a new
    /// trace) and its log entry.
    pub fn begin(front_end: FrontEnd, generation: Arc<Generation>, a: Arrival) -> Exchange {
        let empty = HeaderMap::new();
        let parent = a.trace_parent.unwrap_or(&empty);
        let trace = otel::request_span(parent, a.trace_parent.is_some(), || match front_end {
            FrontEnd::Proxy => a.method.to_string(),
            other => format!("decide {}", other.label()),
        });
        let trace_id = match &trace {
            Some(cx) => Some(otel::trace_id(cx)),
            None => a.trace_parent.and_then(otel::trace_id_in),
        };
        let entry = Entry {
            time: Some(std::time::SystemTime::now()),
            front_end: front_end.label(),
            method: Some(a.method.clone()),
            // At most 256 bytes of what was sent; the normalized path once decided.
            path: Some(a.path[..char_floor(a.path, 256)].to_string()),
            trace_id,
            request_id: Some(a.request_id),
            bytes_in: a.body_size,
            client: a.client,
            ..Entry::default()
        };
        Exchange {
            front_end,
            generation,
            start: Instant::now(),
            entry,
            trace,
            route: None,
            grpc: false,
        }
    }

    pub fn generation(&self) -> &Arc<Generation> {
        &self.generation
    }

    pub fn trace(&self) -> Option<&TraceContext> {
        self.trace.as_ref()
    }

    pub fn request_id(&self) -> &HeaderValue {
        self.entry
            .request_id
            .as_ref()
            .expect("set when the exchange begins")
    }

    /// Decides `head` with the generation's rules, state and network, timed and traced; the
    /// log entry learns the route, the principal and the normalized path.
    pub async fn decide(&mut self, head: &Head<'_>) -> Decided {
        let start = Instant::now();
        let g = &self.generation;
        let decided = match &self.trace {
            // The decision's span; the network work it needs nests under it.
            Some(cx) => {
                let span = otel::child(cx, "decision", Kind::Internal);
                let decided = g
                    .gateway
                    .decide_with(head, &g.network)
                    .with_context(span.clone())
                    .await;
                otel::end(&span);
                decided
            }
            None => g.gateway.decide_with(head, &g.network).await,
        };
        g.requests
            .observe_decision(self.front_end, start.elapsed().as_secs_f64());
        self.learn(&decided);
        decided
    }

    /// What the log entry and the counters learn from a decision.
    fn learn(&mut self, decided: &Decided) {
        let g = &self.generation;
        self.route = decided.route;
        self.entry.route = decided
            .route
            .map(|r| g.gateway.rules.routes[r].name.clone());
        self.entry.principal = decided.principal.clone();
        self.entry.stale = decided.stale;
        if let (Some(r), Some(route)) = (&decided.would_refuse, decided.route) {
            self.entry.would_refuse = Some(r.reason());
            g.requests.would_refuse(self.front_end, route, r.reason());
        }
        if let Verdict::Forward(f) = &decided.verdict {
            self.entry.org = f.org.clone();
            self.entry.path = Some(f.path.clone());
        }
    }

    /// A decision made without [`Exchange::decide`] (a preflight forwarded to the upstream),
    /// taken into the log entry as `decide` would.
    pub fn adopt(&mut self, decided: Decided) -> Decided {
        self.learn(&decided);
        decided
    }

    /// The route the decision took, if any.
    pub fn decided_route(&self) -> Option<usize> {
        self.route
    }

    /// The request took `route` without a decision of its own (a CORS preflight).
    pub fn routed(&mut self, route: usize) {
        self.entry.route = Some(self.generation.gateway.rules.routes[route].name.clone());
    }

    /// Counts and logs a refusal of the gateway's own.
    pub fn refused(&mut self, route: Option<usize>, r: &Refusal) {
        self.refused_as(route, r.outcome(), r.status().as_u16(), r.reason());
    }

    /// Counts and logs a refusal by its status and reason (a call the decision endpoint could
    /// not take: an untrusted or misconfigured caller).
    pub fn refused_as(
        &mut self,
        route: Option<usize>,
        outcome: Outcome,
        status: u16,
        reason: &'static str,
    ) {
        self.generation
            .requests
            .refused(self.front_end, route, outcome, reason);
        self.entry.status = status;
        self.entry.refusal = Some(reason);
    }

    /// The gateway's answer to a refusal: rendered once, with the challenges pointing at
    /// the RFC 9728 metadata of the resource the request is for (`resource_metadata`).
    pub fn render(&self, r: &Refusal) -> Rendered {
        let rendered = r.render();
        let path = self.entry.path.as_deref().unwrap_or("/");
        let rendered = match self.generation.gateway.rules.resources.challenge_for(path) {
            Some(parameter) => rendered.with_challenge_parameter(parameter),
            None => rendered,
        };
        if self.grpc {
            rendered.into_grpc()
        } else {
            rendered
        }
    }

    /// The request is a gRPC call: its refusals are answered as gRPC statuses.
    pub fn speaks_grpc(&mut self) {
        self.grpc = true;
    }

    /// Counts and logs a request answered with a resource's RFC 9728 document.
    pub fn served_metadata(&mut self) {
        self.entry.route = Some(METADATA_ROUTE.into());
        self.generation
            .requests
            .count(self.front_end, None, Outcome::Allowed);
    }

    /// Counts an allowed request (forwarded, or answered allowed to the caller).
    pub fn allowed(&mut self, route: Option<usize>) {
        self.generation
            .requests
            .count(self.front_end, route, Outcome::Allowed);
    }

    /// What the upstream answered, and when.
    pub fn upstream(&mut self, status: u16, took: Duration) {
        self.entry.upstream_status = Some(status);
        self.entry.upstream_duration = Some(took);
    }

    /// The body size when it was not declared: what was read of it.
    pub fn body_read(&mut self, bytes: u64) {
        self.entry.bytes_in.get_or_insert(bytes);
    }

    /// Ends the span and writes the log line.
    pub fn finish(mut self, status: u16, body_size: Option<u64>) {
        self.entry.status = status;
        self.entry.bytes_out = body_size;
        if let Some(cx) = &self.trace {
            let route = self.entry.route.clone().unwrap_or_default();
            let decision = if self.entry.allowed() {
                "allowed"
            } else {
                "refused"
            };
            otel::annotate(
                cx,
                [
                    ("http.route", route.into()),
                    ("scopegate.decision", decision.into()),
                    ("scopegate.reason", self.entry.refusal.unwrap_or("").into()),
                ],
            );
            otel::annotate_int(cx, "http.response.status_code", i64::from(status));
            otel::end(cx);
        }
        self.entry.duration = Some(self.start.elapsed());
        requestlog::write(&self.generation.serving.log, &self.entry);
    }
}
