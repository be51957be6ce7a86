//! An answer of `GET /api/v1/query` to the one number a gate compares: a scalar, or a vector
//! of exactly one sample. Anything else is an error that names the query.

use serde_json::Value;

/// The value of `body` (an API answer with HTTP status `status`) to `query`.
pub fn value_of(query: &str, status: u16, body: &[u8]) -> Result<f64, String> {
    let json: Value = serde_json::from_slice(body).map_err(|_| {
        format!(
            "query {query:?}: HTTP {status}, not a Prometheus API answer ({} bytes)",
            body.len()
        )
    })?;
    if json["status"] != "success" {
        let kind = json["errorType"].as_str().unwrap_or("error");
        let error = json["error"].as_str().unwrap_or("no message");
        return Err(format!("query {query:?}: HTTP {status}, {kind}: {error}"));
    }
    let data = &json["data"];
    let sample = match data["resultType"].as_str() {
        Some("scalar") => &data["result"],
        Some("vector") => match data["result"].as_array().map(Vec::as_slice) {
            Some([one]) => &one["value"],
            Some([]) => return Err(format!("query {query:?}: empty result (no series)")),
            Some(many) => {
                return Err(format!(
                    "query {query:?}: {} series, expected a scalar or one series (aggregate it, e.g. sum(...))",
                    many.len()
                ))
            }
            None => return Err(format!("query {query:?}: a vector without a result list")),
        },
        other => {
            return Err(format!(
                "query {query:?}: result of type {}, expected a scalar or one series",
                other.unwrap_or("none")
            ))
        }
    };
    let text = sample[1].as_str().unwrap_or("");
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(v) => Err(format!(
            "query {query:?}: value {v}, expected a finite number"
        )),
        Err(_) => Err(format!("query {query:?}: sample {sample} has no value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: &str = "sum(rate(x[1m]))";

    #[test]
    fn a_scalar_or_one_series() {
        let scalar = br#"{"status":"success","data":{"resultType":"scalar","result":[1700000000.5,"0.25"]}}"#;
        assert_eq!(value_of(Q, 200, scalar), Ok(0.25));
        let one = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"3"]}]}}"#;
        assert_eq!(value_of(Q, 200, one), Ok(3.0));
    }

    #[test]
    fn everything_else_is_an_error_naming_the_query() {
        let empty = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(
            value_of(Q, 200, empty),
            Err("query \"sum(rate(x[1m]))\": empty result (no series)".into())
        );
        let two = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]}]}}"#;
        assert_eq!(
            value_of(Q, 200, two),
            Err("query \"sum(rate(x[1m]))\": 2 series, expected a scalar or one series (aggregate it, e.g. sum(...))".into())
        );
        let bad = br#"{"status":"error","errorType":"bad_data","error":"parse error at char 4"}"#;
        assert_eq!(
            value_of(Q, 400, bad),
            Err("query \"sum(rate(x[1m]))\": HTTP 400, bad_data: parse error at char 4".into())
        );
        let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(value_of(Q, 200, matrix)
            .expect_err("an error")
            .contains("result of type matrix"));
        let nan = br#"{"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}}"#;
        assert!(value_of(Q, 200, nan)
            .expect_err("an error")
            .contains("value NaN"));
        assert!(value_of(Q, 502, b"<html>bad gateway</html>")
            .expect_err("an error")
            .contains("HTTP 502, not a Prometheus API answer"));
    }
}
