//! Each admin command: the calls it makes, what it prints in each form, and its exit code.
//! JSON goes to stdout as the API answered (also for a refusal, as before); everything meant
//! for a person at the side of a result (warnings, errors, a rejection's lines) to stderr.

use super::args::AdminArgs;
use super::exit::{Exit, Failure};
use super::output::Format;
use super::render;
use super::session::{Answer, Session};
use super::write_file;
use crate::stamp::{sha256_hex, unix_now};
use serde_json::{json, Value};
use std::path::PathBuf;

type Render = fn(&Value, u64) -> String;

/// Opens the session and runs `f`; a failure is printed and gives its exit code.
fn run(args: &AdminArgs, write: bool, f: impl FnOnce(&Session) -> Result<Exit, Failure>) -> Exit {
    match Session::open(args, write).and_then(|s| f(&s)) {
        Ok(exit) => exit,
        Err(failure) => failure.report(),
    }
}

/// The answer when the API accepted the call; otherwise its JSON on stdout (`-o json`) and the
/// API's own words, after `what`, as the failure.
fn accepted(s: &Session, a: Answer, what: &str) -> Result<Answer, Failure> {
    if a.ok() {
        return Ok(a);
    }
    if s.format == Format::Json {
        print!("{}", a.text);
    }
    Err(Failure::failed(format!("{what}: {}", a.error())))
}

/// Prints an accepted answer in the session's form.
fn print(s: &Session, a: &Answer, render: Render) {
    match s.format {
        Format::Json => print!("{}", a.text),
        Format::Table => print!("{}", render(&a.json, unix_now())),
    }
}

/// A line for a person that is no warning: on stdout beside a table, on stderr beside JSON
/// (stdout stays one JSON document).
fn note(s: &Session, line: &str) {
    match s.format {
        Format::Json => eprintln!("{line}"),
        Format::Table => println!("{line}"),
    }
}

fn show(args: &AdminArgs, path: &str, what: &str, render: Render) -> Exit {
    run(args, false, |s| {
        let a = accepted(s, s.call("GET", path, None)?, what)?;
        print(s, &a, render);
        Ok(Exit::Success)
    })
}

/// `dyegate status`.
pub fn status(args: &AdminArgs) -> Exit {
    show(args, "/status", "status", render::status::render)
}

/// `dyegate upstreams`.
pub fn upstreams(args: &AdminArgs) -> Exit {
    show(args, "/upstreams", "upstreams", render::upstreams::render)
}

/// `dyegate mirrors [ROUTE]`.
pub fn mirrors(args: &AdminArgs, route: Option<&str>) -> Exit {
    match route {
        None => show(args, "/mirrors", "mirrors", render::mirrors::render),
        Some(r) => show(
            args,
            &format!("/mirrors/{r}"),
            &format!("mirrors {r}"),
            render::mirrors::render,
        ),
    }
}

/// `dyegate versions [N]`: the list, or version N's record and source.
pub fn versions(args: &AdminArgs, version: Option<crate::reload::VersionId>) -> Exit {
    match version {
        None => show(args, "/versions", "versions", render::versions::render),
        Some(n) => show(
            args,
            &format!("/versions/{n}"),
            &format!("versions {n}"),
            render::versions::render_one,
        ),
    }
}

/// `dyegate reload`: applied or unchanged exits 0; rejected (the routes or the certificates)
/// prints the errors as the gateway located them, one per line on stderr, and exits 1.
pub fn reload(args: &AdminArgs) -> Exit {
    run(args, true, |s| {
        let a = s.call("POST", "/reload", None)?;
        if a.status != 422 {
            let a = accepted(s, a, "reload")?;
            print(s, &a, render::answer::render);
            return Ok(Exit::Success);
        }
        match s.format {
            Format::Json => print!("{}", a.text),
            // The routes may have gone through with the certificates rejected.
            Format::Table if a.json["result"] != "failed" => {
                print!("{}", render::answer::render(&a.json, unix_now()))
            }
            Format::Table => {}
        }
        eprint!("{}", render::answer::rejection(&a.json));
        Ok(Exit::Failed)
    })
}

/// `dyegate rollback [--to N] [--write-file]`. Without `--write-file`, a rollback the routes
/// file does not hold is followed by a warning: the next reload applies the file again.
pub fn rollback(args: &AdminArgs, to: Option<crate::reload::VersionId>, write_file: bool) -> Exit {
    run(args, true, |s| {
        let routes_file = match write_file {
            true => Some(file_fed(s)?),
            false => None,
        };
        let body = to.map(|v| json!({ "to": v }).to_string());
        let a = s.call("POST", "/rollback", body.as_deref())?;
        let a = accepted(s, a, "rollback refused")?;
        print(s, &a, render::answer::render);
        match routes_file {
            Some(path) => keep(s, &a.json, &path)?,
            None => warn_unkept(&a.json),
        }
        Ok(Exit::Success)
    })
}

/// The routes file of a gateway fed by one; a refusal for an etcd-fed gateway.
fn file_fed(s: &Session) -> Result<PathBuf, Failure> {
    let status = accepted(s, s.call("GET", "/status", None)?, "status")?.json;
    if status["source"] == "etcd" {
        return Err(Failure::failed(format!(
            "rollback --write-file: this gateway's table comes from etcd (under {}), not from a \
             routes file; roll the fleet back with `dyegate rollback --fleet --to REVISION`, or \
             this gateway alone without --write-file",
            render::text(&status["etcd"]["prefix"])
        )));
    }
    match status["routes_file"].as_str() {
        Some(f) => Ok(PathBuf::from(f)),
        None => Err(Failure::failed(
            "rollback --write-file: the gateway's status names no routes file",
        )),
    }
}

/// After a rollback without `--write-file`: what the next reload will do.
fn warn_unkept(report: &Value) {
    let version = render::text(&report["version_after"]);
    if report["source"] == "file" && report["matches_file"] == false {
        eprintln!(
            "warning: the routes file is not version {version}: the next reload (a save of the \
             file, SIGHUP, `dyegate reload` or POST /reload) applies the file again; keep this \
             version with `dyegate rollback --write-file`, or edit the file"
        );
    }
    if report["divergent"] == true {
        eprintln!(
            "warning: this gateway now serves another table than the fleet's in etcd: the next \
             revision replaces it; roll the whole fleet back with `dyegate rollback --fleet --to REVISION`"
        );
    }
}

/// `--write-file`: the routes file replaced by the version now serving, so that it is kept.
fn keep(s: &Session, report: &Value, path: &std::path::Path) -> Result<(), Failure> {
    let version = render::text(&report["version_after"]);
    let shown = path.display();
    if report["matches_file"] == true {
        note(
            s,
            &format!("{shown} holds version {version} already: not written"),
        );
        return Ok(());
    }
    let not_written = |why: String| {
        Failure::failed(format!(
            "the rollback is in effect (version {version}), but {shown} was not written: {why}; \
             the next reload applies the file again"
        ))
    };
    let answer = s
        .call("GET", &format!("/versions/{version}"), None)
        .map_err(|f| not_written(f.message))?;
    if !answer.ok() {
        return Err(not_written(answer.error()));
    }
    let text = answer.json["source"].as_str().unwrap_or_default();
    let overrides = &answer.json["overrides"];
    let plain = overrides.as_object().is_none_or(|o| o.is_empty());
    let kept_sha = match plain {
        true => Some(sha256_hex(text.as_bytes())),
        false => answer.json["sha256"].as_str().map(str::to_string),
    };
    if kept_sha.as_deref() != report["sha256"].as_str() {
        return Err(not_written(format!(
            "version {version}'s record does not have the sha256 the rollback reported"
        )));
    }
    if plain {
        let written = write_file::replace(path, text.as_bytes()).map_err(not_written)?;
        note(
            s,
            &format!(
                "wrote version {version} to {}: the file holds what serves (its reload is a no-op)",
                written.display()
            ),
        );
        return Ok(());
    }
    // Weights running rollouts had set over the text: written into it, so the file serves the
    // same routing (as a new version: the text differs from the version's own).
    let text = super::weights_text::with_weights(text, overrides).map_err(not_written)?;
    let written = write_file::replace(path, text.as_bytes()).map_err(not_written)?;
    note(
        s,
        &format!(
            "wrote version {version} to {} with the rollouts' weights written in: its reload applies the same routing as a new version",
            written.display()
        ),
    );
    Ok(())
}

/// `dyegate rollout [status] [ROUTE]` and `dyegate rollout pause|resume|promote|abort ROUTE`.
pub fn rollout(args: &AdminArgs, action: Option<&str>, route: Option<&str>, to_end: bool) -> Exit {
    let (method, path) = match rollout_request(action, route, to_end) {
        Ok(r) => r,
        Err(e) => return Failure::usage(e).report(),
    };
    let what = match (action, route) {
        (Some(a), Some(r)) => format!("rollout {a} {r}"),
        (Some(a), None) => format!("rollout {a}"),
        _ => "rollout".to_string(),
    };
    run(args, method == "POST", |s| {
        let a = accepted(s, s.call(method, &path, None)?, &what)?;
        let render: Render = match path.as_str() {
            "/rollouts" => render::rollouts::render_all,
            _ => render::rollouts::render,
        };
        print(s, &a, render);
        Ok(Exit::Success)
    })
}

/// The admin request of `dyegate rollout ...`.
fn rollout_request(
    action: Option<&str>,
    route: Option<&str>,
    to_end: bool,
) -> Result<(&'static str, String), String> {
    match (action, route) {
        (None | Some("status"), None) => Ok(("GET", "/rollouts".into())),
        (None, Some(r)) => Ok(("GET", format!("/rollouts/{r}"))),
        (Some("status"), Some(r)) => Ok(("GET", format!("/rollouts/{r}"))),
        (Some(a @ ("pause" | "resume" | "promote" | "abort")), Some(r)) => {
            let q = if to_end && a == "promote" {
                "?to_end=true"
            } else {
                ""
            };
            Ok(("POST", format!("/rollouts/{r}/{a}{q}")))
        }
        (Some(a @ ("pause" | "resume" | "promote" | "abort")), None) => Err(format!(
            "rollout {a}: expected a route: dyegate rollout {a} ROUTE"
        )),
        (Some(r), None) => Ok(("GET", format!("/rollouts/{r}"))),
        (Some(a), Some(_)) => Err(format!(
            "rollout: found {a:?}, expected status, pause, resume, promote or abort"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::rollout_request;

    #[test]
    fn rollout_words_to_requests() {
        let r = |a, b, end| rollout_request(a, b, end);
        assert_eq!(r(None, None, false), Ok(("GET", "/rollouts".into())));
        assert_eq!(
            r(Some("shop"), None, false),
            Ok(("GET", "/rollouts/shop".into()))
        );
        assert_eq!(
            r(Some("status"), Some("shop"), false),
            Ok(("GET", "/rollouts/shop".into()))
        );
        assert_eq!(
            r(Some("promote"), Some("shop"), true),
            Ok(("POST", "/rollouts/shop/promote?to_end=true".into()))
        );
        assert_eq!(
            r(Some("abort"), Some("shop"), true),
            Ok(("POST", "/rollouts/shop/abort".into()))
        );
        assert!(r(Some("pause"), None, false).is_err());
        assert!(r(Some("stop"), Some("shop"), false).is_err());
    }
}
