//! The server under test: `http[s]://host[:port][/prefix]`, resolved once.

use std::net::SocketAddr;

use super::transport::{H2Pool, TlsClient};
use super::LoadError;

/// A resolved server address and what to put in requests.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    /// The `Host` header value.
    pub(crate) host_header: String,
    /// A path prefix before `/events` and `/admin/...`, without trailing `/`.
    pub(crate) path_prefix: String,
    /// The host name (for TLS verification).
    pub(crate) host: String,
    /// True for `https://`.
    pub(crate) https: bool,
    /// How to speak TLS, for `https://` (set by the driver).
    pub(crate) tls: Option<TlsClient>,
    /// HTTP/2 connections the subscriptions use, if any (set by the driver).
    pub(crate) h2: Option<std::sync::Arc<H2Pool>>,
}

/// Splits `url` into host and port, host header and path prefix.
fn split(url: &str) -> Result<(String, u16, String, String), LoadError> {
    let (rest, default_port) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(rest), _) => (rest, 80),
        (_, Some(rest)) => (rest, 443),
        _ => {
            return Err(LoadError::InvalidUrl(format!(
                "{url}: only http:// and https:// are supported"
            )))
        }
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(LoadError::InvalidUrl(format!("{url}: bad host")));
    }
    let (host, port) = match authority.rfind(':') {
        // `[::1]:8080` or `host:8080`, but not the colons inside `[::1]`.
        Some(at) if !authority[at..].contains(']') => {
            let port = authority[at + 1..]
                .parse::<u16>()
                .map_err(|_| LoadError::InvalidUrl(format!("{url}: bad port")))?;
            (&authority[..at], port)
        }
        _ => (authority, default_port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(LoadError::InvalidUrl(format!("{url}: bad host")));
    }
    if path.contains(['?', '#']) {
        return Err(LoadError::InvalidUrl(format!(
            "{url}: no query or fragment in the base url"
        )));
    }
    Ok((
        host.to_owned(),
        port,
        authority.to_owned(),
        path.trim_end_matches('/').to_owned(),
    ))
}

impl Target {
    /// Parses and resolves `url`.
    pub(crate) async fn resolve(url: &str) -> Result<Target, LoadError> {
        let (host, port, host_header, path_prefix) = split(url)?;
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| LoadError::InvalidUrl(format!("{url}: {e}")))?
            .next()
            .ok_or_else(|| LoadError::InvalidUrl(format!("{url}: no address")))?;
        Ok(Target {
            addr,
            host_header,
            path_prefix,
            https: url.starts_with("https://"),
            host,
            tls: None,
            h2: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        let parts = split("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            parts,
            ("127.0.0.1".into(), 8080, "127.0.0.1:8080".into(), "".into())
        );
        let parts = split("http://localhost/sse/").unwrap();
        assert_eq!(
            parts,
            ("localhost".into(), 80, "localhost".into(), "/sse".into())
        );
        let parts = split("http://[::1]:9000/x").unwrap();
        assert_eq!(
            parts,
            ("::1".into(), 9000, "[::1]:9000".into(), "/x".into())
        );
        assert_eq!(split("https://x").unwrap().1, 443);
        assert!(split("ftp://x").is_err());
        assert!(split("http://:80").is_err());
        assert!(split("http://h:99999").is_err());
        assert!(split("http://h/?a=1").is_err());
        assert!(split("http://").is_err());
    }

    #[tokio::test]
    async fn resolves_loopback() {
        let target = Target::resolve("http://127.0.0.1:1").await.unwrap();
        assert_eq!(target.addr, "127.0.0.1:1".parse().unwrap());
    }
}
