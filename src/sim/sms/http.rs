//! The SMS simulators' HTTP helpers: simulated waits, the loopback rule for
//! callbacks and a proxy's error page. Connections are served by `sim::serve`.
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

pub(in crate::sim) use crate::sim::serve::{hang_up, spawn};

/// Sleeps, but not past shutdown: a simulated delay must not hold up the
/// caller's graceful shutdown.
pub(super) async fn pause(shutdown: &CancellationToken, delay: Duration) {
    if delay.is_zero() {
        return;
    }
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        () = shutdown.cancelled() => {}
    }
}

/// The URL, if it parses and names a loopback host: simulators never post
/// anywhere else.
pub(super) fn loopback_url(url: &str) -> Option<reqwest::Url> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let host = parsed.host_str()?.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    (loopback && matches!(parsed.scheme(), "http" | "https")).then_some(parsed)
}

/// An nginx-style error page, as a proxy in front of a gateway sends.
pub(super) fn proxy_page(status: StatusCode) -> Response {
    let reason = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error"));
    let body = format!(
        "<html>\r\n<head><title>{reason}</title></head>\r\n<body>\r\n<center><h1>{reason}</h1></center>\r\n\
         <hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    );
    (status, [(axum::http::header::CONTENT_TYPE, "text/html")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_pass() {
        assert!(loopback_url("http://127.0.0.1:8080/dlr").is_some());
        assert!(loopback_url("http://localhost/x?y=1").is_some());
        assert!(loopback_url("http://[::1]:9/x").is_some());
        assert!(loopback_url("http://192.0.2.1/dlr").is_none());
        assert!(loopback_url("https://example.com/").is_none());
        assert!(loopback_url("ftp://127.0.0.1/").is_none());
        assert!(loopback_url("not a url").is_none());
    }
}
