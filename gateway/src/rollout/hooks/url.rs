//! A hook's or a Prometheus gate's URL, checked once at load: `http://` or `https://`, a host,
//! a port (80/443 when not written), and the path and query the requests go to.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct HookUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// `/` when the URL has no path.
    pub path: String,
    /// As written (for messages and the status).
    text: String,
}

impl HookUrl {
    /// The URL, or the message after `found ...,` for a located config error.
    pub fn parse(text: &str) -> Result<HookUrl, String> {
        let expected = "expected an http:// or https:// URL with a host, such as http://release-bot:8000/confirm";
        let uri: http::Uri = text
            .parse()
            .map_err(|_| format!("found {text:?}, {expected}"))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(format!("found {text:?}, {expected}")),
        };
        let Some(authority) = uri.authority() else {
            return Err(format!("found {text:?}, {expected}"));
        };
        if authority.as_str().contains('@') {
            return Err(format!(
                "found {text:?} with credentials in it, {expected} (secrets come from files)"
            ));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("found {text:?}, {expected}"));
        }
        let path = uri
            .path_and_query()
            .map_or("/".to_string(), |p| p.as_str().to_string());
        Ok(HookUrl {
            tls,
            host: host.to_string(),
            port: authority.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            path: if path.is_empty() { "/".into() } else { path },
            text: text.to_string(),
        })
    }

    /// The same server, at `path` under this URL's own path (a Prometheus API under a prefix).
    pub fn under(&self, path: &str) -> HookUrl {
        let base = self
            .path
            .split('?')
            .next()
            .unwrap_or("")
            .trim_end_matches('/');
        HookUrl {
            path: format!("{base}{path}"),
            ..self.clone()
        }
    }

    /// `host:port` as the `Host` header has it.
    pub fn authority(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            p if p == default => host,
            p => format!("{host}:{p}"),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for HookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

impl fmt::Display for HookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_and_https_with_a_host_only() {
        let u = HookUrl::parse("http://release-bot:8000/confirm").expect("url");
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path.as_str()),
            (false, "release-bot", 8000, "/confirm")
        );
        assert_eq!(u.authority(), "release-bot:8000");
        let u = HookUrl::parse("https://bot.example.com").expect("url");
        assert_eq!((u.tls, u.port, u.path.as_str()), (true, 443, "/"));
        assert_eq!(u.authority(), "bot.example.com");
        let u = HookUrl::parse("http://[::1]:9090/prom/").expect("url");
        assert_eq!(u.host, "::1");
        assert_eq!(u.under("/api/v1/query").path, "/prom/api/v1/query");
        for bad in [
            "ftp://x/y",
            "release-bot:8000/confirm",
            "/confirm",
            "http://",
            "http://u:p@bot/",
        ] {
            assert!(HookUrl::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            HookUrl::parse("ftp://x/y").err().as_deref(),
            Some("found \"ftp://x/y\", expected an http:// or https:// URL with a host, such as http://release-bot:8000/confirm")
        );
    }
}
