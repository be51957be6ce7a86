//! `GET /mirrors` and `GET /mirrors/ROUTE`: per route and shadow group, the mirrored copies by
//! outcome and the last mismatches (`crate::mirror::Book`).

use crate::mirror::Book;
use http::{Method, StatusCode};
use serde_json::{json, Value};

pub fn mirrors(book: Option<&Book>, method: &Method, path: &str) -> (StatusCode, Value) {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            json!({ "error": "method not allowed" }),
        );
    }
    let route = path
        .strip_prefix("/mirrors/")
        .filter(|r| !r.is_empty() && !r.contains('/'));
    if path != "/mirrors" && route.is_none() {
        return (
            StatusCode::NOT_FOUND,
            json!({ "error": "not found, expected GET /mirrors or GET /mirrors/ROUTE" }),
        );
    }
    let answer = book.map_or_else(|| json!({ "mirrors": [] }), |b| b.to_json(route));
    match route {
        Some(r) if answer["mirrors"].as_array().is_some_and(Vec::is_empty) => (
            StatusCode::NOT_FOUND,
            json!({ "error": format!("route {r:?} has mirrored no request (yet): no counts"), "mirrors": [] }),
        ),
        _ => (StatusCode::OK, answer),
    }
}
