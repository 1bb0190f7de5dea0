//! Drives the alerts.in.ua simulator over HTTP with reqwest, as the feed
//! adapter will.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, IF_MODIFIED_SINCE, LAST_MODIFIED};
use serde_json::Value;
use sirena::sim::feed::{Fault, FeedSim, FeedSimConfig, SimAlert};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

struct Harness {
    sim: FeedSim,
    client: reqwest::Client,
    url: String,
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Harness {
    async fn with(cfg: FeedSimConfig) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        let sim = FeedSim::start(cfg, token.clone(), &tracker).await?;
        let url = format!("{}/v1/alerts/active.json", sim.base_url());
        Ok(Self { sim, client: reqwest::Client::new(), url, token, tracker })
    }

    async fn new() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        // Generous, so tests that are not about the limit never meet it.
        Self::with(FeedSimConfig { requests_per_min: 1000, ..FeedSimConfig::default() }).await
    }

    fn get(&self) -> reqwest::RequestBuilder {
        self.client.get(&self.url).header(AUTHORIZATION, "Bearer sim-alerts-token")
    }

    async fn stop(self) {
        self.token.cancel();
        self.tracker.close();
        tokio::time::timeout(Duration::from_secs(3), self.tracker.wait()).await.expect("sim stops promptly");
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

fn kharkiv() -> SimAlert {
    SimAlert {
        location_uid: 22,
        location_title: "Харківська область".to_owned(),
        location_type: "oblast".to_owned(),
        location_oblast: "Харківська область".to_owned(),
        location_oblast_uid: 22,
        alert_type: "air_raid".to_owned(),
        started_at: Utc.with_ymd_and_hms(2024, 5, 6, 10, 2, 45).unwrap(),
    }
}

#[tokio::test]
async fn serves_active_alerts_in_the_live_shape() -> TestResult {
    let h = Harness::new().await?;
    h.sim.set_alerts(vec![kharkiv()]);
    let resp = h.get().send().await?;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().contains_key(LAST_MODIFIED));
    let body: Value = resp.json().await?;
    let alert = &body["alerts"][0];
    assert_eq!(alert["location_uid"], "22");
    assert_eq!(alert["location_oblast_uid"], 22);
    assert_eq!(alert["location_title"], "Харківська область");
    assert_eq!(alert["alert_type"], "air_raid");
    assert_eq!(alert["started_at"], "2024-05-06T10:02:45.000Z");
    assert!(alert["finished_at"].is_null());
    assert!(alert["id"].is_u64());
    assert!(body["meta"]["last_updated_at"].as_str().is_some_and(|s| s.ends_with(" +0000")));
    assert_eq!(body["disclaimer"], "");

    // The same alert keeps its id across a replacement of the list.
    let id = alert["id"].clone();
    h.sim.set_alerts(vec![kharkiv()]);
    let body: Value = h.get().send().await?.json().await?;
    assert_eq!(body["alerts"][0]["id"], id);
    assert_eq!(h.sim.requests(), 2);
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn uids_can_be_integers() -> TestResult {
    let h = Harness::with(FeedSimConfig { uid_as_string: false, ..FeedSimConfig::default() }).await?;
    h.sim.set_alerts(vec![kharkiv()]);
    let body: Value = h.get().send().await?.json().await?;
    assert_eq!(body["alerts"][0]["location_uid"], 22);
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn if_modified_since_gets_304_until_a_change() -> TestResult {
    let h = Harness::new().await?;
    let resp = h.get().send().await?;
    let last_modified = resp.headers().get(LAST_MODIFIED).expect("Last-Modified").clone();
    let resp = h.get().header(IF_MODIFIED_SINCE, last_modified.clone()).send().await?;
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    assert!(resp.bytes().await?.is_empty());

    // Any change, even within the same second, is visible.
    h.sim.set_alerts(vec![kharkiv()]);
    let resp = h.get().header(IF_MODIFIED_SINCE, last_modified).send().await?;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await?;
    assert_eq!(body["alerts"].as_array().map(Vec::len), Some(1));
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn token_is_required() -> TestResult {
    let h = Harness::new().await?;
    let resp = h.client.get(&h.url).send().await?;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await?;
    assert_eq!(body, serde_json::json!({"message": "Unauthorized"}));

    let resp = h.client.get(&h.url).header(AUTHORIZATION, "Bearer nope").send().await?;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let resp = h.client.get(format!("{}?token=sim-alerts-token", h.url)).send().await?;
    assert_eq!(resp.status(), StatusCode::OK);
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn ninth_request_in_a_minute_is_refused() -> TestResult {
    let h = Harness::with(FeedSimConfig::default()).await?;
    for _ in 0..8 {
        assert_eq!(h.get().send().await?.status(), StatusCode::OK);
    }
    let resp = h.get().send().await?;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = resp.json().await?;
    assert_eq!(body, serde_json::json!({"message": "Too many requests"}));
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn each_fault_is_served_then_the_feed_recovers() -> TestResult {
    let h = Harness::new().await?;
    h.sim.set_alerts(vec![kharkiv()]);

    h.sim.inject(Fault::Status(503), 2);
    for _ in 0..2 {
        let resp = h.get().send().await?;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = resp.json().await?;
        assert_eq!(body["message"], "Internal server error");
    }
    assert_eq!(h.get().send().await?.status(), StatusCode::OK);

    h.sim.inject(Fault::Garbage, 1);
    let resp = h.get().send().await?;
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await?;
    assert_eq!(text, "<html>502 Bad Gateway</html>");
    assert!(serde_json::from_str::<Value>(&text).is_err());

    h.sim.inject(Fault::Truncated, 1);
    let resp = h.get().send().await?;
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = resp.bytes().await?;
    assert!(!bytes.is_empty());
    assert!(serde_json::from_slice::<Value>(&bytes).is_err());

    h.sim.inject(Fault::EmptyList, 1);
    let body: Value = h.get().send().await?.json().await?;
    assert_eq!(body["alerts"], serde_json::json!([]));

    // A client with a short timeout sees the delay as a timeout.
    h.sim.inject(Fault::Delay(Duration::from_secs(2)), 1);
    let err = h.get().timeout(Duration::from_millis(200)).send().await.expect_err("timed out");
    assert!(err.is_timeout(), "{err:?}");

    let body: Value = h.get().send().await?.json().await?;
    assert_eq!(body["alerts"][0]["location_uid"], "22");
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn delayed_answer_does_not_hold_up_shutdown() -> TestResult {
    let h = Harness::new().await?;
    h.sim.inject(Fault::Delay(Duration::from_secs(60)), 1);
    let req = h.get().send();
    let pending = tokio::spawn(req);
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.stop().await;
    let resp = tokio::time::timeout(Duration::from_secs(3), pending).await??;
    // Answered at once (or the connection closed) rather than after 60 s.
    if let Ok(resp) = resp {
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    Ok(())
}
