//! Traces over OTLP: when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, spans go to the collector and
//! a message carries its W3C trace context (`traceparent`) in its NATS headers from the socket
//! through `CHAT_IN` and the persister to every instance that delivers it. Unset, nothing of
//! this runs: no layer, no header written, no header read.

use std::sync::atomic::{AtomicBool, Ordering};

use async_nats::HeaderMap;
use opentelemetry::{
    KeyValue,
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::TracerProvider as _,
};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::{
    Resource, propagation::TraceContextPropagator, runtime, trace::SdkTracerProvider,
    trace::span_processor_with_async_runtime::BatchSpanProcessor,
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::registry::LookupSpan;

/// Whether [`Traces::start`] ran in this process: the propagation helpers do nothing until it
/// has.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether traces are exported (and trace context travels in headers).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The exporting side: keep it until shutdown, then [`Traces::shutdown`] flushes what is
/// still batched.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Builds the OTLP/HTTP (JSON) exporter for `endpoint` behind a batch span processor on
    /// the tokio runtime, with `service.name=jetchat` and `service.instance.id=instance`, and
    /// returns the tracing layer that feeds it. Call it inside the runtime.
    pub fn start<S>(
        endpoint: &url::Url,
        instance: &str,
    ) -> Result<(Self, impl tracing_subscriber::Layer<S>), opentelemetry_otlp::ExporterBuildError>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpJson)
            .with_endpoint(traces_url(endpoint))
            .build()?;
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BatchSpanProcessor::builder(exporter, runtime::Tokio).build())
            .with_resource(
                Resource::builder()
                    .with_service_name("jetchat")
                    .with_attribute(KeyValue::new("service.instance.id", instance.to_owned()))
                    .build(),
            )
            .build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("jetchat"));
        ENABLED.store(true, Ordering::Relaxed);
        Ok((Traces { provider }, layer))
    }

    /// Exports the spans still batched and stops the exporter.
    pub async fn shutdown(self) {
        let provider = self.provider;
        // The processor's shutdown blocks until its task on this runtime has flushed.
        let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(error)) = done {
            tracing::warn!(%error, "flushing the last traces failed");
        }
    }
}

/// `{endpoint}/v1/traces`, as the OTLP exporter specification builds it from the base URL.
fn traces_url(endpoint: &url::Url) -> String {
    format!("{}/v1/traces", endpoint.as_str().trim_end_matches('/'))
}

/// Headers carrying the current span's trace context; `None` when traces are off (or there is
/// no span being recorded).
pub fn current_context_headers() -> Option<HeaderMap> {
    if !enabled() {
        return None;
    }
    context_headers(&tracing::Span::current())
}

/// Headers carrying `span`'s trace context; `None` when traces are off.
pub fn context_headers(span: &tracing::Span) -> Option<HeaderMap> {
    if !enabled() {
        return None;
    }
    let mut headers = NatsHeaders(HeaderMap::new());
    TraceContextPropagator::new().inject_context(&span.context(), &mut headers);
    (!headers.0.is_empty()).then_some(headers.0)
}

/// Whether `headers` carry trace context (a `traceparent`, valid or not) to continue.
pub fn has_context(headers: Option<&HeaderMap>) -> bool {
    headers.is_some_and(|h| h.get(TRACEPARENT).is_some())
}

/// The `traceparent` header of W3C Trace Context.
const TRACEPARENT: &str = "traceparent";

/// Makes `span` a child of the trace context in `headers`, when traces are on and there is one
/// (an invalid `traceparent` is no context: the span starts a trace of its own).
pub fn set_parent(span: &tracing::Span, headers: Option<&HeaderMap>) {
    let Some(headers) = headers.filter(|_| enabled()) else {
        return;
    };
    let _ = span.set_parent(parent_of(headers));
}

/// The trace context in `headers`; an empty one when there is none or it is malformed.
fn parent_of(headers: &HeaderMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&NatsHeadersRef(headers))
}

/// Writes trace context into NATS headers.
struct NatsHeaders(HeaderMap);

impl Injector for NatsHeaders {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

/// Reads trace context from NATS headers.
struct NatsHeadersRef<'a>(&'a HeaderMap);

impl Extractor for NatsHeadersRef<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|value| value.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_ref()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_url_follows_the_base_url() {
        for base in ["http://c:4318", "http://c:4318/"] {
            let url = url::Url::parse(base).unwrap();
            assert_eq!(traces_url(&url), "http://c:4318/v1/traces");
        }
        let url = url::Url::parse("https://c/otlp/").unwrap();
        assert_eq!(traces_url(&url), "https://c/otlp/v1/traces");
    }

    #[test]
    fn a_traceparent_is_read_and_garbage_is_no_context() {
        use opentelemetry::trace::TraceContextExt as _;
        let parent = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(TRACEPARENT, value);
            assert!(has_context(Some(&headers)));
            parent_of(&headers).span().span_context().clone()
        };
        let valid = parent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        assert!(valid.is_valid() && valid.is_remote());
        assert_eq!(
            valid.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        let huge = "f".repeat(64 * 1024);
        for garbage in [
            "",
            "garbage",
            "00-00000000000000000000000000000000-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
            "-9223372036854775808",
            &huge,
        ] {
            assert!(!parent(garbage).is_valid(), "{garbage:.40}");
        }
        assert!(!has_context(Some(&HeaderMap::new())));
        assert!(!has_context(None));
    }

    #[test]
    fn without_traces_no_header_is_written_or_read() {
        // Nothing in the library's tests starts the exporter.
        assert!(!enabled());
        assert!(current_context_headers().is_none());
        let span = tracing::info_span!("send_message");
        assert!(context_headers(&span).is_none());
        set_parent(&span, Some(&HeaderMap::new()));
    }
}
