//! `sirena health`: asks a running daemon's `/readyz` (or, `--live`, `/healthz`) and
//! turns the answer into an exit code and one line, for Docker's `HEALTHCHECK`, a
//! monitoring agent or an operator's shell. The distroless image has no shell or curl,
//! so the binary asks itself.
//!
//! Where to ask: `--url`, else the `[http] listen` of the config directory's
//! `sirena.toml` (read alone, before and without validating the rest, as the log
//! format is), else `127.0.0.1:8640` when the file cannot be read.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

/// Where `[http] listen` is in the shipped config, and where to ask when the config
/// cannot be read.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8640";

/// How long one question may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Which answer is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// `/readyz`: the store answers, the feeds have answered, Telegram accepts the bot.
    Ready,
    /// `/healthz`: the process serves.
    Live,
}

impl Probe {
    fn path(self) -> &'static str {
        match self {
            Probe::Ready => "/readyz",
            Probe::Live => "/healthz",
        }
    }
}

/// Why the default URL could not be found.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum WhereError {
    #[error("{0} has no [http] table: sirena serves no /readyz; add [http] listen = \"{DEFAULT_LISTEN}\"")]
    NoEndpoint(String),
    #[error("{file}: [http] listen = {value:?} is not an address and port such as \"{DEFAULT_LISTEN}\"")]
    BadListen { file: String, value: String },
}

/// The URL to ask: `url` (a base such as `http://127.0.0.1:8640`, or a full URL with
/// its path), else the config's `[http] listen`, else [`DEFAULT_LISTEN`].
pub fn url(url: Option<&str>, config_dir: &Path, probe: Probe) -> Result<String, WhereError> {
    if let Some(url) = url {
        let url = url.trim_end_matches('/');
        let has_path = url.split_once("://").map_or(url, |(_, rest)| rest).contains('/');
        return Ok(if has_path { url.to_owned() } else { format!("{url}{}", probe.path()) });
    }
    let file = config_dir.join("sirena.toml");
    let listen = match std::fs::read_to_string(&file).ok().and_then(|t| t.parse::<toml::Table>().ok()) {
        None => DEFAULT_LISTEN.to_owned(),
        Some(table) => match table.get("http").and_then(|h| h.get("listen")) {
            None => return Err(WhereError::NoEndpoint(file.display().to_string())),
            Some(v) => v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()),
        },
    };
    let addr: SocketAddr = listen
        .parse()
        .map_err(|_| WhereError::BadListen { file: file.display().to_string(), value: listen.clone() })?;
    Ok(format!("http://{}{}", reachable(addr), probe.path()))
}

/// A listen address as a client reaches it: "every address" is reached on loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

/// Asks `url` once. `Ok` with the answer's first line when it is 200; `Err` with one
/// line saying why not.
pub async fn ask(url: &str) -> Result<String, String> {
    let client =
        reqwest::Client::builder().timeout(TIMEOUT).build().map_err(|e| format!("cannot make an HTTP client: {e}"))?;
    let response = match client.get(url).send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return Err(format!("no answer from {url} within {}s", TIMEOUT.as_secs())),
        Err(e) => return Err(format!("no answer from {url}: {}", crate::channels::telegram::network_error(&e))),
    };
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let lines: Vec<&str> = body.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if status.is_success() {
        return Ok(lines.first().map_or_else(|| format!("{url}: HTTP {}", status.as_u16()), |l| (*l).to_owned()));
    }
    let said = if lines.is_empty() { format!("HTTP {}", status.as_u16()) } else { lines.join("; ") };
    Err(format!("{said} ({url}: HTTP {})", status.as_u16()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_comes_from_the_flag_the_config_or_the_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |t: &str| std::fs::write(dir.path().join("sirena.toml"), t).expect("write");
        assert_eq!(url(None, dir.path(), Probe::Ready), Ok("http://127.0.0.1:8640/readyz".into()), "no file");
        write("[http]\nlisten = \"0.0.0.0:9000\"\n");
        assert_eq!(url(None, dir.path(), Probe::Live), Ok("http://127.0.0.1:9000/healthz".into()));
        write("[http]\nlisten = \"[::]:9001\"\n");
        assert_eq!(url(None, dir.path(), Probe::Ready), Ok("http://[::1]:9001/readyz".into()));
        write("[http]\nlisten = \"10.1.2.3:9002\"\n");
        assert_eq!(url(None, dir.path(), Probe::Ready), Ok("http://10.1.2.3:9002/readyz".into()));
        write("[store]\npath = \"x.db\"\n");
        assert!(matches!(url(None, dir.path(), Probe::Ready), Err(WhereError::NoEndpoint(_))));
        write("[http]\nlisten = 8640\n");
        let e = url(None, dir.path(), Probe::Ready).expect_err("a number");
        assert!(
            e.to_string().ends_with("[http] listen = \"8640\" is not an address and port such as \"127.0.0.1:8640\""),
            "{e}"
        );
        write("[http\nlisten = ");
        assert_eq!(url(None, dir.path(), Probe::Ready), Ok("http://127.0.0.1:8640/readyz".into()), "unreadable");
        assert_eq!(url(Some("http://h:1/"), dir.path(), Probe::Ready), Ok("http://h:1/readyz".into()));
        assert_eq!(url(Some("http://h:1/x/readyz"), dir.path(), Probe::Live), Ok("http://h:1/x/readyz".into()));
    }

    #[tokio::test]
    async fn an_answer_is_a_line_and_no_answer_is_a_reason() {
        use axum::http::StatusCode;
        use axum::routing::get;
        let app = axum::Router::new()
            .route("/readyz", get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "not ready: a\nb\n") }))
            .route("/healthz", get(|| async { "ok\n" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        assert_eq!(ask(&format!("http://{addr}/healthz")).await, Ok("ok".into()));
        assert_eq!(
            ask(&format!("http://{addr}/readyz")).await,
            Err(format!("not ready: a; b (http://{addr}/readyz: HTTP 503)"))
        );
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
        let e = ask(&format!("http://{closed}/readyz")).await.expect_err("nothing listens");
        assert!(e.starts_with(&format!("no answer from http://{closed}/readyz: ")), "{e}");
    }
}
