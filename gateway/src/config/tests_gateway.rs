//! gateway.yaml settings checked at load: `admin.token_file`.

use super::Gateway;

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
