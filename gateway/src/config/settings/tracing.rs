//! `tracing:` and `traceresponse:` of gateway.yaml to the settings the telemetry runs with: the
//! endpoint checked and completed, header names and values checked, ranges enforced.

use super::model::{GatewayConfig, OtlpProtocol};
use crate::config::error::Issue;
use crate::config::range::Bound;
use dyegate_plugins::trace_context::is_baggage_key;
use std::time::Duration;

/// `tracing.timeout_ms`: the longest export accepted is a minute.
pub const EXPORT_TIMEOUT_BOUND: Bound<u64> = Bound::millis(1, 60_000);
/// `tracing.queue_size`: a queued span is about 1 KiB.
pub const QUEUE_SIZE_BOUND: Bound<u64> = Bound::whole(1, 1_000_000);
/// `tracing.sample_ratio`: a share of the new traces.
pub const SAMPLE_RATIO_BOUND: Bound<f64> = Bound::number(0.0, 1.0);

/// How the gateway propagates trace context and, with an endpoint, exports its spans.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingSettings {
    /// Share of new traces (no valid incoming `traceparent`) marked sampled.
    pub sample_ratio: f64,
    /// Baggage member that carries the dye tag.
    pub baggage_key: String,
    /// Send `traceresponse` to clients.
    pub traceresponse: bool,
    /// `None`: propagate only.
    pub export: Option<ExportSettings>,
}

impl Default for TracingSettings {
    fn default() -> Self {
        TracingSettings {
            sample_ratio: 0.0,
            baggage_key: "env-tag".into(),
            traceresponse: false,
            export: None,
        }
    }
}

/// Where and how spans are exported.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSettings {
    /// The URL the exporter is given: for OTLP/HTTP, with `/v1/traces` when the config had no path.
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    /// Lowercase names, checked values.
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub queue_size: usize,
    pub service_name: String,
}

/// Checks the tracing part of `config`, pushing an issue per bad field.
pub fn tracing_settings(config: &GatewayConfig, issues: &mut Vec<Issue>) -> TracingSettings {
    let t = &config.tracing;
    let endpoint = t
        .endpoint
        .as_deref()
        .and_then(|e| match endpoint_url(e, t.protocol) {
            Ok(url) => Some(url),
            Err(message) => {
                issues.push(Issue::new("tracing.endpoint", message));
                None
            }
        });
    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, value) in &t.headers.0 {
        let path = format!("tracing.headers.{name}");
        let Ok(parsed) = http::HeaderName::from_bytes(name.as_bytes()) else {
            issues.push(Issue::new(
                path,
                format!("found header name {name:?}, expected letters, digits and !#$%&'*+-.^_`|~"),
            ));
            continue;
        };
        if http::HeaderValue::from_str(value).is_err() {
            issues.push(Issue::new(
                path,
                format!("found {value:?}, expected a header value of visible ASCII characters"),
            ));
            continue;
        }
        let lower = parsed.as_str().to_string();
        if headers.iter().any(|(n, _)| *n == lower) {
            issues.push(Issue::new(
                path,
                format!("found header {name:?} twice, expected each header once"),
            ));
            continue;
        }
        headers.push((lower, value.clone()));
    }
    let sample_ratio = match t.sample_ratio {
        None if t.endpoint.is_some() => 1.0,
        None => 0.0,
        Some(r) if SAMPLE_RATIO_BOUND.check("tracing.sample_ratio", r, issues) => r,
        Some(_) => 0.0,
    };
    if !is_baggage_key(&t.baggage_key) {
        issues.push(Issue::new(
            "tracing.baggage_key",
            format!(
                "found {:?}, expected a baggage key: letters, digits and !#$%&'*+-.^_`|~",
                t.baggage_key
            ),
        ));
    }
    EXPORT_TIMEOUT_BOUND.check("tracing.timeout_ms", t.timeout_ms, issues);
    QUEUE_SIZE_BOUND.check("tracing.queue_size", t.queue_size as u64, issues);
    if t.service_name.trim().is_empty() {
        issues.push(Issue::new(
            "tracing.service_name",
            "found an empty name, expected the service.name of the exported spans",
        ));
    }
    TracingSettings {
        sample_ratio,
        baggage_key: t.baggage_key.clone(),
        traceresponse: config.traceresponse,
        export: endpoint.map(|endpoint| ExportSettings {
            endpoint,
            protocol: t.protocol,
            headers,
            timeout: Duration::from_millis(t.timeout_ms),
            queue_size: t.queue_size,
            service_name: t.service_name.clone(),
        }),
    }
}

/// `http://HOST[:PORT][/PATH]` with nothing else; OTLP/HTTP gets `/v1/traces` when the path is
/// empty (the collector's default), OTLP/gRPC takes no path at all.
fn endpoint_url(given: &str, protocol: OtlpProtocol) -> Result<String, String> {
    let example = match protocol {
        OtlpProtocol::Grpc => "http://127.0.0.1:4317",
        OtlpProtocol::Http => "http://127.0.0.1:4318",
    };
    let wrong = |why: &str| format!("found {given:?}, expected {why} such as {example}");
    let uri: http::Uri = given.trim().parse().map_err(|_| wrong("an http:// URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => return Err(wrong(
            "an http:// URL (TLS to the collector is not built in: export to a local collector)",
        )),
        _ => return Err(wrong("an http:// URL")),
    }
    let Some(authority) = uri.authority() else {
        return Err(wrong("an http:// URL with a host"));
    };
    if authority.host().is_empty() || authority.as_str().contains('@') {
        return Err(wrong("an http:// URL with a host and no user"));
    }
    if uri.query().is_some() {
        return Err(wrong("an http:// URL without a query"));
    }
    let path = uri.path();
    let bare = path.is_empty() || path == "/";
    match protocol {
        OtlpProtocol::Grpc if !bare => Err(wrong("an OTLP/gRPC URL without a path")),
        OtlpProtocol::Grpc => Ok(format!("http://{authority}")),
        OtlpProtocol::Http if bare => Ok(format!("http://{authority}/v1/traces")),
        OtlpProtocol::Http => Ok(format!("http://{authority}{path}")),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Gateway;

    use crate::config::settings::tests_files::load_gateway;

    /// The errors of a gateway.yaml made of `text`, one per line, or `ok`.
    fn errors(text: &str) -> String {
        load_gateway(text)
            .err()
            .unwrap_or_else(|| String::from("ok"))
    }

    fn load(text: &str) -> Gateway {
        load_gateway(text).expect("valid")
    }

    #[test]
    fn defaults_propagate_only() {
        let gw = load("listen: [\"127.0.0.1:8080\"]\n");
        assert_eq!(gw.tracing.export, None);
        assert_eq!(gw.tracing.sample_ratio, 0.0);
        assert_eq!(gw.tracing.baggage_key, "env-tag");
        assert!(!gw.tracing.traceresponse);
    }

    #[test]
    fn an_endpoint_samples_everything_by_default() {
        let gw = load("tracing: { endpoint: \"http://127.0.0.1:4317\" }\ntraceresponse: true\n");
        let export = gw.tracing.export.expect("export");
        assert_eq!(export.endpoint, "http://127.0.0.1:4317");
        assert_eq!(export.queue_size, 2048);
        assert_eq!(export.service_name, "dyegate");
        assert_eq!(gw.tracing.sample_ratio, 1.0);
        assert!(gw.tracing.traceresponse);

        let gw = load(
            "tracing:\n  endpoint: http://collector:4318\n  protocol: http\n  sample_ratio: 0.01\n  headers: { X-Api-Key: secret }\n",
        );
        let export = gw.tracing.export.expect("export");
        assert_eq!(export.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(export.headers, vec![("x-api-key".into(), "secret".into())]);
        assert_eq!(gw.tracing.sample_ratio, 0.01);
        let gw = load("tracing: { endpoint: \"http://c:4318/otlp/v1/traces\", protocol: http, sample_ratio: 1 }\n");
        assert_eq!(
            gw.tracing.export.expect("export").endpoint,
            "http://c:4318/otlp/v1/traces"
        );
    }

    #[test]
    fn every_bad_field_is_reported_where_it_is() {
        assert_eq!(
            errors(
                "tracing:\n  endpoint: \"https://collector:4317\"\n  sample_ratio: 1.5\n  baggage_key: \"env tag\"\n  timeout_ms: 0\n  queue_size: 0\n  service_name: \"\"\n  headers: { \"bad name\": x }\n"
            ),
            [
                "gateway.yaml:2:13: tracing.endpoint: found \"https://collector:4317\", expected an http:// URL (TLS to the collector is not built in: export to a local collector) such as http://127.0.0.1:4317",
                "gateway.yaml:8:26: tracing.headers.bad name: found header name \"bad name\", expected letters, digits and !#$%&'*+-.^_`|~",
                "gateway.yaml:3:17: tracing.sample_ratio: found 1.5, expected a number from 0 to 1",
                "gateway.yaml:4:16: tracing.baggage_key: found \"env tag\", expected a baggage key: letters, digits and !#$%&'*+-.^_`|~",
                "gateway.yaml:5:15: tracing.timeout_ms: found 0, expected a whole number of milliseconds from 1 to 60000",
                "gateway.yaml:6:15: tracing.queue_size: found 0, expected a whole number from 1 to 1000000",
                "gateway.yaml:7:17: tracing.service_name: found an empty name, expected the service.name of the exported spans",
            ]
            .join("\n")
        );
    }

    #[test]
    fn endpoint_shapes() {
        for (yaml, want) in [
            ("endpoint: \"127.0.0.1:4317\"", "found \"127.0.0.1:4317\", expected an http:// URL such as http://127.0.0.1:4317"),
            ("endpoint: \"http://\"", "found \"http://\", expected an http:// URL such as http://127.0.0.1:4317"),
            ("endpoint: \"http://c:4317/v1\"", "found \"http://c:4317/v1\", expected an OTLP/gRPC URL without a path such as http://127.0.0.1:4317"),
            ("endpoint: \"http://c:4318/?a=1\", protocol: http", "found \"http://c:4318/?a=1\", expected an http:// URL without a query such as http://127.0.0.1:4318"),
            ("endpoint: \"http://u@c:4317\"", "found \"http://u@c:4317\", expected an http:// URL with a host and no user such as http://127.0.0.1:4317"),
        ] {
            assert_eq!(
                errors(&format!("tracing: {{ {yaml} }}\n")),
                format!("gateway.yaml:1:22: tracing.endpoint: {want}"),
                "{yaml}"
            );
        }
    }

    #[test]
    fn unknown_fields_and_protocols_are_located() {
        assert_eq!(
            errors("tracing:\n  endpont: x\n"),
            "gateway.yaml:2:3: tracing.endpont: found unknown field `endpont`, expected one of `endpoint`, `protocol`, `headers`, `timeout_ms`, `sample_ratio`, `baggage_key`, `queue_size`, `service_name`"
        );
        assert_eq!(
            errors("tracing:\n  protocol: udp\n"),
            "gateway.yaml:2:13: tracing.protocol: found \"udp\", expected one of `grpc`, `http`"
        );
        assert_eq!(
            errors("traceresponse: yes please\n"),
            "gateway.yaml:1:16: traceresponse: found \"yes please\", expected a boolean"
        );
    }
}
