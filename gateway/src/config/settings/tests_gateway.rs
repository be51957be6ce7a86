//! gateway.yaml settings checked at load: `admin.token_file`.

use crate::config::Gateway;

fn tempdir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dyegate-gw-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    dir
}

#[test]
fn admin_token_from_a_file() {
    let dir = tempdir("token-file");
    let f = dir.join("gateway.yaml");
    std::fs::write(dir.join("token"), "s3cret\n").expect("write");
    std::fs::write(
        &f,
        "admin: { listen: \"0.0.0.0:9901\", token_file: token }\n",
    )
    .expect("write");
    let gw = Gateway::load(Some(&f)).expect("token from the file");
    assert_eq!(gw.config.admin.token.as_deref(), Some("s3cret"));

    std::fs::write(dir.join("empty"), " \n").expect("write");
    for (yaml, want) in [
        (
            "admin: { listen: \"0.0.0.0:9901\", token_file: missing }\n",
            format!(
                "{}:1:46: admin.token_file: found {} unreadable (No such file or directory (os error 2)), expected a file holding the bearer token",
                f.display(),
                dir.join("missing").display()
            ),
        ),
        (
            "admin: { listen: \"0.0.0.0:9901\", token_file: empty }\n",
            format!(
                "{}:1:46: admin.token_file: found an empty file {}, expected a bearer token",
                f.display(),
                dir.join("empty").display()
            ),
        ),
        (
            "admin: { token: a, token_file: token }\n",
            format!(
                "{}:1:32: admin.token_file: found both admin.token and admin.token_file, expected one of them",
                f.display()
            ),
        ),
    ] {
        std::fs::write(&f, yaml).expect("write");
        let e = Gateway::load(Some(&f)).expect_err(yaml);
        assert_eq!(e.to_string(), want, "{yaml}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dns_settings_and_their_errors() {
    let dir = tempdir("dns");
    let f = dir.join("gateway.yaml");
    std::fs::write(
        &f,
        "dns: { interval_ms: 250, nameservers: [\"127.0.0.1:5353\", \"10.0.0.2\"] }\n",
    )
    .expect("write");
    let gw = Gateway::load(Some(&f)).expect("valid dns");
    assert_eq!(gw.dns.interval, std::time::Duration::from_millis(250));
    let want: Vec<std::net::SocketAddr> = vec![
        "127.0.0.1:5353".parse().expect("addr"),
        "10.0.0.2:53".parse().expect("addr"),
    ];
    assert_eq!(gw.dns.nameservers, Some(want));
    std::fs::write(&f, "listen: [\"127.0.0.1:8080\"]\n").expect("write");
    let gw = Gateway::load(Some(&f)).expect("defaults");
    assert_eq!(gw.dns.interval, std::time::Duration::from_secs(5));
    assert_eq!(gw.dns.nameservers, None, "the system's resolv.conf");
    std::fs::write(
        &f,
        "dns:\n  interval_ms: 0\n  nameservers: [\"10.0.0.2:53\", \"dns.local:53\"]\n  retries: 2\n",
    )
    .expect("write");
    let e = Gateway::load(Some(&f)).expect_err("bad dns");
    let f = f.display();
    assert_eq!(
        e.to_string(),
        format!("{f}:4:3: dns.retries: found unknown field `retries`, expected one of `interval_ms`, `nameservers`")
    );
    let f2 = dir.join("gateway.yaml");
    std::fs::write(
        &f2,
        "dns:\n  interval_ms: 0\n  nameservers: [\"10.0.0.2:53\", \"dns.local:53\"]\n",
    )
    .expect("write");
    let e = Gateway::load(Some(&f2)).expect_err("bad dns");
    assert_eq!(
        e.to_string(),
        [
            format!("{f}:2:16: dns.interval_ms: found 0, expected a whole number of milliseconds from 100 to 3600000"),
            format!("{f}:3:32: dns.nameservers[1]: found \"dns.local:53\", expected an IP address with an optional port such as 10.0.0.2 or 10.0.0.2:53 or [fd00::2]:53"),
        ]
        .join("\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
