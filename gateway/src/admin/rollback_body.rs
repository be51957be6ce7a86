//! The body of `POST /rollback`: empty or `{}` (roll back to the previous version), or
//! `{"to": N}` (or `{"to": "N.K"}`, a local change kept on a gateway that follows etcd).
//! Anything else is refused, naming the allowed field: a typo (`{"too": 3}`) must not roll back
//! to the previous version instead of the one asked for.

use crate::reload::VersionId;
use serde_json::Value;

const EXPECTED: &str =
    "expected an empty body or {} (the previous version), or an object with the one field `to` (a version: a number, or \"N.K\" for a local change), e.g. {\"to\": 3}";

/// `Ok(None)`: the previous version; `Ok(Some(n))`: version n; `Err`: the 400's message.
/// `{}` is the previous version (scripts send it); `{"to": null}` is refused: a `to` that is
/// there must be a version.
pub fn rollback_target(body: &[u8]) -> Result<Option<VersionId>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| format!("found a body that is not JSON ({e}), {EXPECTED}"))?;
    let Value::Object(fields) = &value else {
        return Err(format!("found {value}, {EXPECTED}"));
    };
    if let Some(unknown) = fields.keys().find(|k| k.as_str() != "to") {
        return Err(format!("found unknown field `{unknown}`, {EXPECTED}"));
    }
    match fields.get("to") {
        None => Ok(None),
        Some(to) => (serde_json::from_value::<VersionId>(to.clone()).ok())
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "found \"to\": {to}, expected a version number (or \"N.K\" for a local change)"
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_to_are_the_only_forms() {
        assert_eq!(rollback_target(b""), Ok(None));
        assert_eq!(rollback_target(b" \n"), Ok(None));
        assert_eq!(rollback_target(br#"{"to": 3}"#), Ok(Some(3.into())));
        assert_eq!(
            rollback_target(br#"{"to": "41.2"}"#),
            Ok(Some(VersionId::local(41, 2)))
        );
        assert_eq!(
            rollback_target(br#"{"too": 1}"#),
            Err(format!("found unknown field `too`, {EXPECTED}"))
        );
        assert_eq!(rollback_target(b"5"), Err(format!("found 5, {EXPECTED}")));
        assert_eq!(
            rollback_target(b"null"),
            Err(format!("found null, {EXPECTED}"))
        );
        assert_eq!(rollback_target(b"{}"), Ok(None));
        assert_eq!(
            rollback_target(br#"{"to": null}"#),
            Err(
                "found \"to\": null, expected a version number (or \"N.K\" for a local change)"
                    .to_string()
            )
        );
        assert_eq!(
            rollback_target(br#"{"to": -1}"#),
            Err(
                "found \"to\": -1, expected a version number (or \"N.K\" for a local change)"
                    .to_string()
            )
        );
        assert!(rollback_target(b"{").is_err_and(|e| e.contains("not JSON")));
    }
}
