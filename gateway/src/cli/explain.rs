//! `dyegate explain [--header K:V] [--cookie K=V] [--query K=V] [--ip A] [-X METHOD] URL`:
//! which route and tag a request would get and why, nothing sent. Asks the running gateway
//! (`POST /explain`, read role), or with `--file [ROUTES]` decides on a file's table (the one
//! gateway.yaml names when none is given) with the same decision code, every target healthy.

use super::args::{default_config, AdminArgs};
use super::exit::{Exit, Failure};
use super::output::{self, Format};
use super::session::Session;
use crate::admin::explain_json::{explain_json, ExplainRequest};
use crate::routing::{Addresses, AllHealthy};
use serde_json::Value;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// The request from the command line: `K:V`, `K=V` pairs as given.
pub fn request(
    url: String,
    method: Option<String>,
    headers: &[String],
    cookies: &[String],
    query: &[String],
    ip: Option<&str>,
) -> Result<ExplainRequest, Failure> {
    let split = |flag: &str, sep: char, items: &[String]| {
        (items.iter())
            .map(|s| {
                s.split_once(sep)
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .ok_or_else(|| {
                        Failure::usage(format!("--{flag}: found {s:?}, expected NAME{sep}VALUE"))
                    })
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let ip = ip
        .map(|a| {
            a.trim()
                .parse()
                .map_err(|_| Failure::usage(format!("--ip: found {a:?}, expected an IP address")))
        })
        .transpose()?;
    Ok(ExplainRequest {
        url,
        method,
        headers: split("header", ':', headers)?,
        cookies: split("cookie", '=', cookies)?,
        query: split("query", '=', query)?,
        ip,
    })
}

/// Runs the command: through the admin API, or on `file` (`Some("")`: gateway.yaml's).
pub fn explain(args: &AdminArgs, file: Option<&Path>, req: &ExplainRequest) -> Exit {
    let result = match file {
        Some(f) => on_file(args, f, req),
        None => on_gateway(args, req),
    };
    match result {
        Ok(exit) => exit,
        Err(failure) => failure.report(),
    }
}

fn on_gateway(args: &AdminArgs, req: &ExplainRequest) -> Result<Exit, Failure> {
    let s = Session::open(args, false)?;
    let body = serde_json::to_string(req).map_err(|e| Failure::failed(e.to_string()))?;
    let a = s.call("POST", "/explain", Some(&body))?;
    if !a.ok() {
        if s.format == Format::Json {
            print!("{}", a.text);
        }
        return Err(Failure::failed(format!("explain: {}", a.error())));
    }
    print_answer(s.format, &a.json);
    Ok(Exit::Success)
}

fn on_file(args: &AdminArgs, file: &Path, req: &ExplainRequest) -> Result<Exit, Failure> {
    let (path, max) = if file.as_os_str().is_empty() {
        let gw = crate::config::Gateway::load(default_config(args.config.clone()).as_deref())
            .map_err(|e| {
                Failure::lines(&e.0.iter().map(ToString::to_string).collect::<Vec<_>>())
            })?;
        (gw.routes_path, gw.reload.max_file_bytes)
    } else {
        (
            PathBuf::from(file),
            crate::config::bounds::DEFAULT_MAX_FILE_BYTES,
        )
    };
    let loaded = crate::config::load_routes(&path, max)
        .map_err(|e| Failure::lines(&e.0.iter().map(ToString::to_string).collect::<Vec<_>>()))?;
    let j = explain_json(&loaded.table, None, req, &AllHealthy, Addresses::none())
        .map_err(Failure::usage)?;
    print_answer(
        output::choose(args.output, std::io::stdout().is_terminal()),
        &j,
    );
    Ok(Exit::Success)
}

fn print_answer(format: Format, j: &Value) {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(j).unwrap_or_default()),
        Format::Table => print!("{}", render(j)),
    }
}

/// The answer for a person:
/// ```text
/// route shop: group shop-canary, reason tag, tag canary (from cookie:env_tag)
/// match: host,cookies.plan
/// tried: gray failed on cookies.plan; shop matched (host)
/// split: shop-stable 95%, shop-canary 5%
/// ```
pub fn render(j: &Value) -> String {
    let s = |k: &str| j[k].as_str().unwrap_or("none").to_string();
    let mut out = String::new();
    match j["outcome"].as_str() {
        Some("no_route") => out.push_str("no route: 404\n"),
        Some("rejected") => out.push_str(&format!(
            "route {}: unknown tag rejected, 503\n",
            s("route")
        )),
        outcome => {
            let group = match outcome {
                Some("split") => "by the split (its next pick is not known in advance)".into(),
                _ => format!("group {}", s("group")),
            };
            out.push_str(&format!(
                "route {}: {group}, reason {}",
                s("route"),
                s("reason")
            ));
            if outcome == Some("no_healthy_target") {
                out.push_str(", no healthy target: 503");
            }
            out.push('\n');
        }
    }
    let from = j["tag_from"]
        .as_str()
        .map(|f| format!(" (from {f})"))
        .unwrap_or_default();
    match j["tag_status"].as_str() {
        Some("untrusted") | Some("malformed") => out.push_str(&format!(
            "tag: {} tag{from} ignored and stripped\n",
            s("tag_status")
        )),
        _ if !j["tag"].is_null() => out.push_str(&format!("tag: {}{from}\n", s("tag"))),
        _ => {}
    }
    out.push_str(&format!("match: {}\nmiss: {}\n", s("match"), s("miss")));
    let tried: Vec<String> = (j["tried"].as_array().into_iter().flatten())
        .map(|t| {
            let name = t["route"].as_str().unwrap_or_default();
            match t["failed"].as_str() {
                Some(c) => format!("  {name}: failed on {c}"),
                None => {
                    let conds: Vec<&str> = (t["matched"].as_array().into_iter().flatten())
                        .filter_map(Value::as_str)
                        .collect();
                    let conds = if conds.is_empty() {
                        "any".to_string()
                    } else {
                        conds.join(",")
                    };
                    format!("  {name}: matched ({conds})")
                }
            }
        })
        .collect();
    if !tried.is_empty() || j["other_hosts"].as_u64().unwrap_or(0) > 0 {
        out.push_str("tried:\n");
        for t in tried {
            out.push_str(&t);
            out.push('\n');
        }
        if let Some(n) = j["other_hosts"].as_u64().filter(|n| *n > 0) {
            out.push_str(&format!("  ({n} routes for other hosts)\n"));
        }
    }
    if let Some(split) = j["split"].as_array() {
        let parts: Vec<String> = split
            .iter()
            .map(|g| {
                let share = g["share"].as_f64().unwrap_or(0.0) * 100.0;
                format!(
                    "{} {}%",
                    g["group"].as_str().unwrap_or_default(),
                    (share * 100.0).round() / 100.0
                )
            })
            .collect();
        out.push_str(&format!("split: {}\n", parts.join(", ")));
    }
    out
}
