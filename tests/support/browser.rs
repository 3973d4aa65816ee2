//! Headless Chromium through chromedriver (WebDriver, with `fantoccini`):
//! a driver on a free port, a session with the flags every test needs
//! (nothing phones home), and chromedriver's logs.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

use super::KillOnDrop;
use super::tools::tool;

/// chromedriver on a free port, killed on drop.
pub fn driver() -> (KillOnDrop, u16) {
    let port = super::free_port();
    let child = Command::new(tool("chromedriver"))
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (KillOnDrop(child), port)
}

/// The capabilities of a headless Chromium with a fresh profile in
/// `profile`, no background networking, `extra` flags, and the console
/// (`browser`) and DevTools network (`performance`) logs on.
pub fn caps(profile: &std::path::Path, extra: &[String]) -> serde_json::Map<String, Value> {
    let mut args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    args.extend(extra.iter().cloned());
    json!({
        "goog:chromeOptions": { "binary": tool("chromium").display().to_string(), "args": args },
        "goog:loggingPrefs": { "browser": "ALL", "performance": "ALL" },
    })
    .as_object()
    .unwrap()
    .clone()
}

/// A session on the chromedriver at `port` (it takes a moment to listen).
pub async fn connect(
    port: u16,
    caps: serde_json::Map<String, Value>,
    patience: Duration,
) -> Client {
    let t = Instant::now();
    loop {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => return c,
            Err(e) if t.elapsed() < patience => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("chromedriver: {e}"),
        }
    }
}

/// `POST /session/{id}/se/log`: chromedriver's log of a type (`browser`
/// for the console, `performance` for DevTools network events).
#[derive(Debug)]
pub struct GetLog(pub &'static str);

impl WebDriverCompatibleCommand for GetLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }
    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "type": self.0 }).to_string()),
        )
    }
}

/// The entries of a log since the last call.
pub async fn log(c: &Client, kind: &'static str) -> Vec<Value> {
    match c.issue_cmd(GetLog(kind)).await.unwrap() {
        Value::Array(v) => v,
        other => panic!("log {kind}: {other}"),
    }
}
