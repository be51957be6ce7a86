//! `GET /rollouts`, `GET /rollouts/ROUTE`, `GET /rollouts/ROUTE/series` (the last 15 minutes,
//! one point a second), `POST /rollouts/ROUTE/{pause,resume,promote,abort}`
//! (`promote?to_end=true` goes to the last step).

use crate::reload::{Caller, Reloader};
use crate::rollout::{Control, Controller, RolloutError};
use http::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

/// Answers a request under `/rollouts`.
pub async fn rollouts(
    controller: Option<&Arc<Controller>>,
    reloader: Arc<Reloader>,
    method: &Method,
    path: &str,
    query: Option<&str>,
    caller: Caller,
) -> (StatusCode, Value) {
    let Some(c) = controller else {
        return (
            StatusCode::NOT_FOUND,
            json!({ "error": "rollouts are not running" }),
        );
    };
    let rest = path.trim_start_matches("/rollouts").trim_start_matches('/');
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    match (method, parts.as_slice()) {
        (&Method::GET, []) => (
            StatusCode::OK,
            json!({ "rollouts": c.status_all(&*reloader) }),
        ),
        (&Method::GET, [route]) => match c.status(route, &*reloader) {
            Some(s) => (StatusCode::OK, s),
            None => (
                StatusCode::NOT_FOUND,
                json!({ "error": format!("no rollout for route {route:?}") }),
            ),
        },
        (&Method::GET, [route, "series"]) => match c.series_json(route, since(query)) {
            Some(s) => (StatusCode::OK, s),
            None => (
                StatusCode::NOT_FOUND,
                json!({ "error": format!("no rollout for route {route:?}") }),
            ),
        },
        (&Method::POST, [route, action]) => {
            let to_end = query.is_some_and(|q| {
                q.split('&')
                    .any(|kv| matches!(kv, "to_end" | "to_end=true" | "to_end=1"))
            });
            let Some(control) = Control::parse(action, to_end) else {
                return (
                    StatusCode::NOT_FOUND,
                    json!({ "error": format!("unknown control {action:?}, expected pause, resume, promote or abort") }),
                );
            };
            if let Some(fleet) = c.fleet() {
                // A fleet's rollout: a compare-and-swap of its state in etcd, whichever gateway.
                return match fleet.control(route, control, caller).await {
                    Ok(()) => match c.status(route, &*reloader) {
                        Some(s) => (StatusCode::OK, s),
                        None => refused(route, &RolloutError::NoRollout(route.to_string())),
                    },
                    Err(e) => refused(route, &e),
                };
            }
            let (c, route) = (c.clone(), route.to_string());
            let r = route.clone();
            let answer =
                tokio::task::spawn_blocking(move || c.control(&route, control, caller, &*reloader));
            match answer.await {
                Ok(Ok(s)) => (StatusCode::OK, s),
                Ok(Err(e)) => refused(&r, &e),
                Err(e) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({ "error": e.to_string() }),
                ),
            }
        }
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            json!({ "error": "expected GET /rollouts, GET /rollouts/ROUTE, GET /rollouts/ROUTE/series or POST /rollouts/ROUTE/{pause,resume,promote,abort}" }),
        ),
    }
}

/// `since=T` of a series request: the last second the caller has.
fn since(query: Option<&str>) -> Option<u64> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("since="))
        .and_then(|v| v.parse().ok())
}

/// The answer to a control that did not happen: the status is chosen here, not in rollout/.
fn refused(route: &str, e: &RolloutError) -> (StatusCode, Value) {
    let (status, message) = match e {
        RolloutError::NoRollout(_) => (StatusCode::NOT_FOUND, e.to_string()),
        RolloutError::Conflict { .. } => (StatusCode::CONFLICT, e.to_string()),
        RolloutError::Superseded | RolloutError::NotApplied(_) => {
            (StatusCode::CONFLICT, format!("rollout of {route}: {e}"))
        }
        RolloutError::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("rollout of {route}: {e}"),
        ),
    };
    (status, json!({ "error": message }))
}
