//! OpenTelemetry traces over OTLP/HTTP: one server span per request, with child spans for
//! the decision, the network work it needs (introspection, key fetches, membership) and the
//! upstream call. W3C `traceparent` is continued from the client only when the peer is a
//! trusted proxy, and propagated to the upstream.
//!
//! Off unless `traces:` is configured; then nothing is created per request (one `Option`
//! check). Spans are exported in batches by the SDK's own thread (never on the request path).

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{FutureExt, SpanKind, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider,
};
use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::Duration;

/// `traces:` of the configuration.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TraceSettings {
    /// The OTLP/HTTP traces URL (`…/v1/traces`).
    pub endpoint: String,
    pub service_name: String,
    /// The fraction of new traces recorded (a continued trace follows its parent's choice).
    pub sample_ratio: f64,
    pub export_interval: Duration,
}

// `sample_ratio` is checked to be within 0..=1 at load: never NaN.
impl Eq for TraceSettings {}

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// Starts exporting (once per process; traces are bound at start).
pub fn start(settings: &TraceSettings) -> Result<(), String> {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(&settings.endpoint)
        .with_timeout(Duration::from_secs(5))
        .with_headers(Default::default())
        .build()
        .map_err(|e| format!("traces.otlp_endpoint: {e}"))?;
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(settings.export_interval)
                .build(),
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            settings.sample_ratio,
        ))))
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(settings.service_name.clone())
                .build(),
        )
        .build();
    let _ = TRACER.set(provider.tracer("scopegate"));
    let _ = PROVIDER.set(provider);
    Ok(())
}

/// Exports what is left (at shutdown).
pub fn shutdown() {
    if let Some(p) = PROVIDER.get() {
        let _ = p.force_flush();
        let _ = p.shutdown();
    }
}

pub fn tracer() -> Option<&'static SdkTracer> {
    TRACER.get()
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct HeadersMut<'a>(&'a mut http::HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(k, v);
        }
    }
}

/// Whether `traceparent` has the field lengths W3C Trace Context gives it (the propagator
/// alone takes a trace id of 31 digits, padded).
fn well_formed(headers: &http::HeaderMap) -> bool {
    let Some(v) = headers.get("traceparent").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let lengths: Vec<usize> = v.split('-').map(str::len).collect();
    lengths.len() >= 4 && lengths[..4] == [2, 32, 16, 2]
}

/// The server span of a request: a child of the client's `traceparent` when `trusted`, else
/// the root of a new trace. `None` when traces are off.
pub fn request_span(
    headers: &http::HeaderMap,
    trusted: bool,
    name: impl FnOnce() -> String,
) -> Option<Context> {
    let tracer = tracer()?;
    let name = name();
    let parent = if trusted && well_formed(headers) {
        TraceContextPropagator::new().extract(&Headers(headers))
    } else {
        Context::new()
    };
    let span = tracer
        .span_builder(name)
        .with_kind(SpanKind::Server)
        .start_with_context(tracer, &parent);
    Some(parent.with_span(span))
}

/// A child span of `parent` (kind internal, or client for a call out).
pub fn child(parent: &Context, name: &'static str, kind: SpanKind) -> Context {
    match tracer() {
        Some(t) => {
            let span = t
                .span_builder(name)
                .with_kind(kind)
                .start_with_context(t, parent);
            parent.with_span(span)
        }
        None => parent.clone(),
    }
}

/// Runs `f` inside a child span of the current context named `name` (the network half of a
/// decision: introspection, key fetches); nothing when traces are off.
pub async fn in_span<T>(name: &'static str, f: impl Future<Output = T>) -> T {
    match tracer() {
        None => f.await,
        Some(_) => {
            let cx = child(&Context::current(), name, SpanKind::Client);
            let out = f.with_context(cx.clone()).await;
            cx.span().end();
            out
        }
    }
}

/// Sets `traceparent` (and `tracestate`) of `cx` in `headers`.
pub fn inject(cx: &Context, headers: &mut http::HeaderMap) {
    TraceContextPropagator::new().inject_context(cx, &mut HeadersMut(headers));
}

/// The trace id of a valid W3C `traceparent` in `headers`, as 32 hex digits (whether or not
/// traces are exported).
pub fn trace_id_in(headers: &http::HeaderMap) -> Option<String> {
    if !well_formed(headers) {
        return None;
    }
    let cx = TraceContextPropagator::new().extract(&Headers(headers));
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

/// The trace id of `cx` as 32 hex digits.
pub fn trace_id(cx: &Context) -> String {
    cx.span().span_context().trace_id().to_string()
}

/// Sets attributes on the span of `cx`.
pub fn annotate(
    cx: &Context,
    attributes: impl IntoIterator<Item = (&'static str, Cow<'static, str>)>,
) {
    let span = cx.span();
    for (k, v) in attributes {
        span.set_attribute(KeyValue::new(k, v.into_owned()));
    }
}

/// Sets an integer attribute on the span of `cx`.
pub fn annotate_int(cx: &Context, key: &'static str, value: i64) {
    cx.span().set_attribute(KeyValue::new(key, value));
}

/// Ends the span of `cx`.
pub fn end(cx: &Context) {
    cx.span().end();
}

pub use opentelemetry::Context as TraceContext;
pub use opentelemetry::trace::SpanKind as Kind;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_valid_traceparent_gives_a_trace_id() {
        let with = |v: &'static str| {
            let mut h = http::HeaderMap::new();
            h.insert("traceparent", http::HeaderValue::from_static(v));
            trace_id_in(&h)
        };
        assert_eq!(
            with("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(with(bad), None, "{bad}");
        }
        assert_eq!(trace_id_in(&http::HeaderMap::new()), None);
    }
}
