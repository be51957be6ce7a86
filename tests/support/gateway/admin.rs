//! The gateway's own reports, as tests read them: the admin API as JSON (with the bearer token
//! when the config sets one) and the audit log as one JSON value per line.

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::Value;

use super::config::GatewayConfig;
use super::process::Dyegate;
use crate::client::Req;
use crate::wait::poll_until;

impl Dyegate {
    /// `METHOD path` on the admin API with `body` (JSON text), sending the configured token.
    /// Returns the status and the body as JSON; panics when the body is not JSON.
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = Req::new(method.clone(), path);
        if let Some(token) = self.config().admin_token() {
            req = req.header("authorization", &format!("Bearer {token}"));
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let resp = req.send(self.admin_addr()).await;
        let json = serde_json::from_slice(&resp.body)
            .unwrap_or_else(|e| panic!("{method} {path}: body is not JSON ({e}): {}", resp.text()));
        (resp.status, json)
    }

    /// `GET path` on the admin API, expecting 200.
    pub async fn admin_get(&self, path: &str) -> Value {
        let (status, json) = self.admin(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {json:#}");
        json
    }

    /// `POST path` on the admin API with an optional JSON body; the status is the caller's to check.
    pub async fn admin_post(&self, path: &str, body: Option<&str>) -> (StatusCode, Value) {
        self.admin(Method::POST, path, body).await
    }

    /// `GET /status`.
    pub async fn status(&self) -> Value {
        self.admin_get("/status").await
    }

    /// The running version number from `GET /status`.
    pub async fn version(&self) -> u64 {
        self.status().await["version"]
            .as_u64()
            .expect("/status has a numeric version")
    }

    /// Polls `GET /status` until `cond` holds and returns that status; panics after `timeout`
    /// with the last status and the gateway's output.
    pub async fn wait_for_status(
        &self,
        timeout: Duration,
        what: &str,
        cond: impl Fn(&Value) -> bool,
    ) -> Value {
        let (held, last) = match poll_until(timeout, || self.status(), |s| cond(s)).await {
            Ok(status) => (true, status),
            Err(status) => (false, status),
        };
        assert!(
            held,
            "no {what} within {timeout:?}; last /status: {last:#}\n{}",
            self.logs()
        );
        last
    }
}

impl GatewayConfig {
    /// Every line of the audit log, parsed; panics on a line that is not one JSON object.
    pub fn audit_records(&self) -> Vec<Value> {
        let path = self.audit_log();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        text.lines()
            .enumerate()
            .map(|(i, line)| match serde_json::from_str::<Value>(line) {
                Ok(v) if v.is_object() => v,
                Ok(_) | Err(_) => panic!(
                    "{}:{}: not a JSON object on one line: {line:?}",
                    path.display(),
                    i + 1
                ),
            })
            .collect()
    }
}
