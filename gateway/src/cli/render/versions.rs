//! `dyegate versions`: the kept versions, the one serving marked; `dyegate versions N`: one
//! version's source text under a comment that says what it is (still a valid routes file).

use super::{short_sha, table, text, when};
use serde_json::Value;

/// What applied a version: `file`, `rollback to 1 (from 2)`, `rollout shop step 2`,
/// `etcd revision 42`.
pub fn trigger(v: &Value) -> String {
    let kind = text(&v["trigger"]);
    match kind.as_str() {
        "rollback" => {
            let mut t = format!("rollback to {}", text(&v["rollback_to"]));
            if !v["rollback_from"].is_null() {
                t.push_str(&format!(" (from {})", text(&v["rollback_from"])));
            }
            t
        }
        "rollout" => format!("rollout {} step {}", text(&v["route"]), text(&v["step"])),
        "etcd" => format!("etcd revision {}", text(&v["revision"])),
        _ => kind,
    }
}

/// A version's name: `41`, or `41.1` for a local change on a gateway that follows etcd.
pub fn id(v: &Value) -> String {
    match v["local"].as_u64() {
        Some(k) if k > 0 => format!("{}.{k}", text(&v["version"])),
        _ => text(&v["version"]),
    }
}

pub fn render(list: &Value, now_unix: u64) -> String {
    let rows: Vec<Vec<String>> = (list["versions"].as_array().into_iter().flatten())
        .map(|v| {
            vec![
                if v["active"] == true { "*" } else { "" }.into(),
                id(v),
                when(&text(&v["loaded_at"]), now_unix),
                trigger(v),
                short_sha(&text(&v["sha256"])).to_string(),
            ]
        })
        .collect();
    let mut out = table(&["", "VERSION", "APPLIED", "TRIGGER", "SHA256"], &rows);
    out.push_str(&format!(
        "* serving: version {} (dyegate versions N: its source; dyegate rollback --to N: serve it again)\n",
        text(&list["active"])
    ));
    out
}

/// One version: a YAML comment with its record (and the weights rollouts set over it), then
/// its source as kept.
pub fn render_one(v: &Value, now_unix: u64) -> String {
    let mut out = format!(
        "# version {}, applied {} by {}\n# sha256 {}\n",
        id(v),
        when(&text(&v["loaded_at"]), now_unix),
        trigger(v),
        text(&v["sha256"])
    );
    if let Some(o) = v["overrides"].as_object().filter(|o| !o.is_empty()) {
        out.push_str(
            "# served with weights set over this text by rollouts (route: split weights):\n",
        );
        for (route, weights) in o {
            out.push_str(&format!("#   {route}: {weights}\n"));
        }
    }
    let source = text(&v["source"]);
    out.push_str(&source);
    if !source.ends_with('\n') {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::facts::assert_all_shown;
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_714_558_320; // 2024-05-01T10:12:00Z

    fn list() -> Value {
        json!({ "active": 4, "versions": [
            { "version": 1, "sha256": "1111111111111111aaaa", "loaded_at": "2024-05-01T09:00:00.000Z", "trigger": "startup", "active": false },
            { "version": 2, "sha256": "2222222222222222bbbb", "loaded_at": "2024-05-01T09:30:00.000Z", "trigger": "file", "active": false },
            { "version": 3, "sha256": "3333333333333333cccc", "loaded_at": "2024-05-01T10:00:00.000Z", "trigger": "rollout", "route": "shop", "step": 2, "active": false },
            { "version": 4, "sha256": "1111111111111111aaaa", "loaded_at": "2024-05-01T10:11:00.000Z", "trigger": "rollback", "rollback_to": 1, "rollback_from": 3, "active": true },
            { "version": 42, "sha256": "4242424242424242dddd", "loaded_at": "2024-05-01T10:11:30.000Z", "trigger": "etcd", "revision": 42, "active": false },
        ]})
    }

    #[test]
    fn the_versions_table_states_every_fact() {
        let l = list();
        let t = render(&l, NOW);
        assert_all_shown(&l, &t, &[]);
        assert_eq!(
            t,
            "   VERSION  APPLIED                                    TRIGGER                 SHA256
   1        2024-05-01T09:00:00.000Z (1 h 12 min ago)  startup                 111111111111
   2        2024-05-01T09:30:00.000Z (42 min ago)      file                    222222222222
   3        2024-05-01T10:00:00.000Z (12 min ago)      rollout shop step 2     333333333333
*  4        2024-05-01T10:11:00.000Z (1 min ago)       rollback to 1 (from 3)  111111111111
   42       2024-05-01T10:11:30.000Z (30 s ago)        etcd revision 42        424242424242
* serving: version 4 (dyegate versions N: its source; dyegate rollback --to N: serve it again)
"
        );
    }

    #[test]
    fn one_version_is_its_source_under_a_comment() {
        let v = json!({ "version": 2, "sha256": "2222222222222222bbbb", "loaded_at": "2024-05-01T09:30:00.000Z",
            "trigger": "file", "source": "routes: []\n" });
        let t = render_one(&v, NOW);
        assert_all_shown(&v, &t, &[]);
        assert_eq!(
            t,
            "# version 2, applied 2024-05-01T09:30:00.000Z (42 min ago) by file\n# sha256 2222222222222222bbbb\nroutes: []\n"
        );
    }

    #[test]
    fn a_local_change_is_named_n_dot_k() {
        assert_eq!(id(&json!({ "version": 41, "local": 2 })), "41.2");
        assert_eq!(id(&json!({ "version": 41 })), "41");
        let one = json!({ "version": 41, "local": 1, "sha256": "ab", "loaded_at": "2024-05-01T09:30:00.000Z",
            "trigger": "rollback", "rollback_to": 40, "rollback_from": 41, "source": "routes: []\n" });
        assert!(
            render_one(&one, 0).starts_with("# version 41.1, applied "),
            "{}",
            render_one(&one, 0)
        );
    }
}
