//! URL and host rules shared by `validate` and `resolve` (PRODUCT 2: https, or http to loopback
//! only). Messages never echo the URL: webhook URLs embed tokens.

use std::net::IpAddr;

/// Whether `host` (a name, an IP, or a bracketed IPv6) is loopback: `localhost`, 127.0.0.0/8, ::1.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks that `raw` is an absolute `https://` URL, or `http://` to a loopback host.
///
/// # Errors
/// What is wrong and what would be valid, without the URL itself.
pub fn check_url(raw: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| {
        format!("is not a valid URL ({e}); write it like \"https://host[:port][/path]\"")
    })?;
    let Some(host) = url.host_str() else {
        return Err("URL has no host; write it like \"https://host[:port][/path]\"".to_string());
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback_host(host) => Ok(url),
        "http" => Err(format!(
            "http:// is allowed only to loopback (127.0.0.0/8, ::1, localhost), not to {host}; use https://"
        )),
        other => Err(format!(
            "URL scheme {other:?} is not supported; use https:// (or http:// to loopback)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_http_only_loopback() {
        assert!(check_url("https://modelarts.eu-de.otc.t-systems.com").is_ok());
        assert!(check_url("http://127.0.0.1:8080/x").is_ok());
        assert!(check_url("http://127.3.4.5").is_ok());
        assert!(check_url("http://[::1]:9093").is_ok());
        assert!(check_url("http://localhost:9093").is_ok());
        let e = check_url("http://example.com/hook?token=abc").unwrap_err();
        assert!(e.contains("loopback") && !e.contains("token=abc"), "{e}");
        assert!(check_url("ftp://example.com").is_err());
        assert!(check_url("not a url").is_err());
        assert!(check_url("http://10.0.0.1").is_err());
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback_host("localhost"));
        assert!(is_loopback_host("127.0.0.1"));
        assert!(is_loopback_host("[::1]"));
        assert!(!is_loopback_host("smtp.example.com"));
        assert!(!is_loopback_host("10.1.1.1"));
    }
}
