//! Drives the feed simulator over HTTP with reqwest, as the feed adapters
//! will: alerts.in.ua, ukrainealarm v3 (with webhook pushes) and CAP.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, IF_MODIFIED_SINCE, LAST_MODIFIED};
use serde_json::Value;
use sirena::sim::feed::{Fault, FeedKind, FeedSim, FeedSimConfig, PushError, SimAlert, SimThreat, WebhookTarget};
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
        katottg: Some("UA63000000000041885".to_owned()),
        ..SimAlert::default()
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
async fn a_revoked_token_gets_401_in_each_feeds_style_until_restored() -> TestResult {
    let h = Harness::new().await?;
    h.sim.revoke(FeedKind::AlertsInUa);
    let resp = h.get().send().await?;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.json::<Value>().await?, serde_json::json!({"message": "Unauthorized"}));
    assert_eq!(h.ua("/api/v3/alerts/status").send().await?.status(), StatusCode::OK, "only that feed");
    h.sim.revoke(FeedKind::UkraineAlarm);
    let resp = h.ua("/api/v3/alerts/status").send().await?;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.bytes().await?.is_empty());
    h.sim.restore(FeedKind::AlertsInUa);
    assert_eq!(h.get().send().await?.status(), StatusCode::OK);
    assert_eq!(h.ua("/api/v3/alerts/status").send().await?.status(), StatusCode::UNAUTHORIZED);
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

// ------------------------------------------------------------------ shared helpers

fn at(h: u32, m: u32, s: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 15, h, m, s).unwrap()
}

/// Kupiansk hromada (Kharkiv oblast), shelled, red level with two threats, one of
/// them yellow.
fn kupiansk() -> SimAlert {
    SimAlert {
        location_uid: 1309,
        location_title: "Куп’янська територіальна громада".to_owned(),
        location_type: "hromada".to_owned(),
        alert_type: "artillery_shelling".to_owned(),
        started_at: at(10, 5, 0),
        alert_level: Some("red".to_owned()),
        threats: vec![SimThreat::new("ballistic_missiles", "red"), SimThreat::new("drones", "yellow")],
        katottg: Some("UA63080090000067457".to_owned()),
        ..kharkiv()
    }
}

/// Lviv raion's air raid: a District of another oblast.
fn lviv_raion() -> SimAlert {
    SimAlert {
        location_uid: 90,
        location_title: "Львівський район".to_owned(),
        location_type: "raion".to_owned(),
        location_oblast: "Львівська область".to_owned(),
        location_oblast_uid: 27,
        started_at: at(10, 7, 30),
        katottg: Some("UA46060000000042587".to_owned()),
        ..kharkiv()
    }
}

impl Harness {
    /// A ukrainealarm request with the bare key, as the spec wants.
    fn ua(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(format!("{}{path}", self.sim.base_url())).header(AUTHORIZATION, "sim-ukrainealarm-key")
    }

    async fn ua_json(&self, path: &str) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let resp = self.ua(path).send().await?;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        Ok(resp.json().await?)
    }

    async fn status_index(&self) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
        let body = self.ua("/api/v3/alerts/status").send().await?.bytes().await?;
        Ok(sirena::sources::ukrainealarm::decode_status(&body)?)
    }

    async fn cap(&self, path: &str) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        let resp = self.client.get(format!("{}{path}", self.sim.base_url())).send().await?;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        Ok(resp.text().await?)
    }
}

/// Just enough XML to check shapes: elements with their local names, attributes
/// and text, built with quick-xml so a malformed document fails the test.
mod xml {
    use quick_xml::XmlVersion;
    use quick_xml::events::Event;

    #[derive(Debug, Default)]
    pub struct El {
        pub name: String,
        pub attrs: Vec<(String, String)>,
        pub text: String,
        pub children: Vec<El>,
    }

    impl El {
        pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a El> + 'a {
            self.children.iter().filter(move |c| c.name == name)
        }
        pub fn child<'a>(&'a self, name: &'a str) -> &'a El {
            self.all(name).next().unwrap_or_else(|| panic!("<{}> has no <{name}>", self.name))
        }
        pub fn text_of(&self, name: &str) -> String {
            self.child(name).text.trim().to_owned()
        }
        pub fn attr(&self, name: &str) -> Option<&str> {
            self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
        }
    }

    pub fn parse(text: &str) -> El {
        let mut reader = quick_xml::Reader::from_str(text);
        reader.config_mut().check_end_names = true;
        let mut stack = vec![El::default()];
        loop {
            match reader.read_event().unwrap_or_else(|e| panic!("bad XML: {e}\n{text}")) {
                Event::Start(e) => stack.push(element(&e)),
                Event::Empty(e) => {
                    let el = element(&e);
                    stack.last_mut().expect("open element").children.push(el);
                }
                Event::End(_) => {
                    let el = stack.pop().expect("open element");
                    stack.last_mut().expect("parent").children.push(el);
                }
                Event::Text(t) => stack.last_mut().expect("open").text.push_str(&t.xml10_content()),
                Event::GeneralRef(r) => {
                    let name = r.xml10_content();
                    let resolved = match r.resolve_char_ref().expect("char ref") {
                        Some(c) => c.to_string(),
                        None => quick_xml::escape::resolve_predefined_entity(&name).expect("known entity").to_owned(),
                    };
                    stack.last_mut().expect("open").text.push_str(&resolved);
                }
                Event::Eof => break,
                _ => {}
            }
        }
        let mut root = stack.pop().expect("document");
        assert!(stack.is_empty(), "unclosed elements");
        assert_eq!(root.children.len(), 1, "one root element");
        root.children.remove(0)
    }

    fn element(e: &quick_xml::events::BytesStart<'_>) -> El {
        let name = AsRef::<str>::as_ref(&e.local_name()).to_owned();
        let attrs = e
            .attributes()
            .map(|a| {
                let a = a.expect("attribute");
                let key = AsRef::<str>::as_ref(&a.key).to_owned();
                (key, a.normalized_value(XmlVersion::Implicit1_0).expect("value").into_owned())
            })
            .collect();
        El { name, attrs, ..El::default() }
    }
}

// ------------------------------------------------------------------ alerts.in.ua extras

#[tokio::test]
async fn alerts_in_ua_lists_level_and_threat_objects_only_when_set() -> TestResult {
    let h = Harness::new().await?;
    let worded = SimThreat {
        source_message: Some("Загроза балістичних ракет (червоний рівень)".into()),
        started_at: Some(at(10, 6, 0)),
        ..SimThreat::new("ballistic_missiles", "red")
    };
    let english = SimAlert { location_title_en: Some("Kupiansk hromada".into()), ..kupiansk() };
    h.sim
        .set_alerts(vec![kharkiv(), SimAlert { threats: vec![worded, SimThreat::new("drones", "yellow")], ..english }]);
    let body: Value = h.get().send().await?.json().await?;
    let plain = &body["alerts"][0];
    assert!(plain.get("alert_level").is_none() && plain.get("threats").is_none(), "{plain}");
    // The fields every alert of the live API has (the official client's `Alert`).
    for key in ["location_title_en", "notes", "calculated", "country", "location_oblast_uid", "updated_at"] {
        assert!(plain.get(key).is_some(), "{key}: {plain}");
    }
    assert_eq!(plain["location_title_en"], Value::Null);
    let rich = &body["alerts"][1];
    assert_eq!(rich["alert_level"], "red");
    assert_eq!(rich["location_title_en"], "Kupiansk hromada");
    // Threats are objects with their own level and start (DESIGN §11).
    assert_eq!(
        rich["threats"],
        serde_json::json!([
            {"threat_type": "ballistic_missiles", "level": "red", "started_at": "2025-01-15T10:06:00.000Z",
             "source_message": "Загроза балістичних ракет (червоний рівень)"},
            {"threat_type": "drones", "level": "yellow", "started_at": "2025-01-15T10:05:00.000Z", "source_message": null},
        ])
    );
    // A test may serve threats exactly as given: names, or garbage.
    h.sim.set_alerts(vec![SimAlert { threats_as_sent: Some(serde_json::json!(["drones", 42])), ..kupiansk() }]);
    let body: Value = h.get().send().await?.json().await?;
    assert_eq!(body["alerts"][0]["threats"], serde_json::json!(["drones", 42]));
    h.stop().await;
    Ok(())
}

// ------------------------------------------------------------------ ukrainealarm

#[tokio::test]
async fn ukrainealarm_groups_alerts_in_oblast_records() -> TestResult {
    let h = Harness::new().await?;
    h.sim.set_alerts(vec![kharkiv(), kupiansk(), lviv_raion()]);
    let body = h.ua_json("/api/v3/alerts").await?;
    let records = body.as_array().expect("an array");
    assert_eq!(records.len(), 2, "{body}");

    let kharkiv_record = &records[0];
    assert_eq!(kharkiv_record["regionId"], "22");
    assert_eq!(kharkiv_record["regionType"], "State");
    assert_eq!(kharkiv_record["regionName"], "Харківська область");
    // A string, as the provider sends (`""` for a record the sim has no English name for).
    assert_eq!(kharkiv_record["regionEngName"], "");
    assert_eq!(kharkiv_record["lastUpdate"], "2025-01-15T10:05:00Z");
    let alerts = kharkiv_record["activeAlerts"].as_array().expect("activeAlerts");
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0]["regionId"], "22");
    assert_eq!(alerts[0]["regionType"], "State");
    assert_eq!(alerts[0]["type"], "AIR");
    assert_eq!(alerts[0]["lastUpdate"], "2024-05-06T10:02:45Z");
    assert!(alerts[0].get("activeAlertLevels").is_none());
    // The hromada's alert sits in the oblast record under its own id.
    assert_eq!(alerts[1]["regionId"], "1309");
    assert_eq!(alerts[1]["regionType"], "Community");
    assert_eq!(alerts[1]["type"], "ARTILLERY");
    // One level entry per level its threats are at, as the provider's clients show.
    assert_eq!(
        alerts[1]["activeAlertLevels"],
        serde_json::json!([
            {"alertLevel": "Red", "reason": "Загроза балістичних ракет (червоний рівень)", "createdAt": "2025-01-15T10:05:00Z"},
            {"alertLevel": "Yellow", "reason": "Дронова загроза (жовтий рівень)", "createdAt": "2025-01-15T10:05:00Z"},
        ])
    );

    let lviv_record = &records[1];
    assert_eq!(lviv_record["regionId"], "27");
    assert_eq!(lviv_record["regionName"], "Львівська область");
    assert_eq!(lviv_record["activeAlerts"][0]["regionId"], "90");
    assert_eq!(lviv_record["activeAlerts"][0]["regionType"], "District");

    // One region: an oblast is its State record, a child its own record.
    let one = h.ua_json("/api/v3/alerts/22").await?;
    assert_eq!(one, Value::Array(vec![kharkiv_record.clone()]));
    let one = h.ua_json("/api/v3/alerts/1309").await?;
    assert_eq!(one[0]["regionId"], "1309");
    assert_eq!(one[0]["regionType"], "Community");
    assert_eq!(one[0]["activeAlerts"].as_array().map(Vec::len), Some(1));
    assert_eq!(h.ua("/api/v3/alerts/5555").send().await?.status(), StatusCode::NOT_FOUND);

    // After the alerts end the regions are still known, with nothing active.
    h.sim.set_alerts(vec![]);
    assert_eq!(h.ua_json("/api/v3/alerts").await?, serde_json::json!([]));
    let one = h.ua_json("/api/v3/alerts/27").await?;
    assert_eq!(one[0]["activeAlerts"], serde_json::json!([]));

    let regions = h.ua_json("/api/v3/regions").await?;
    let states = regions["states"].as_array().expect("states");
    assert_eq!(states.iter().map(|s| s["regionId"].clone()).collect::<Vec<_>>(), ["22", "27"]);
    assert_eq!(states[0]["regionType"], "State");
    let children: Vec<(&Value, &Value)> = states[0]["regionChildIds"]
        .as_array()
        .expect("children")
        .iter()
        .map(|c| (&c["regionId"], &c["regionType"]))
        .collect();
    assert_eq!(children, vec![(&Value::from("1309"), &Value::from("Community"))]);
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn ukrainealarm_takes_the_bare_key_only() -> TestResult {
    let h = Harness::new().await?;
    for path in ["/api/v3/alerts", "/api/v3/alerts/status", "/api/v3/regions"] {
        let url = format!("{}{path}", h.sim.base_url());
        for bad in [Some("Bearer sim-ukrainealarm-key"), Some("nope"), None] {
            let mut req = h.client.get(&url);
            if let Some(v) = bad {
                req = req.header(AUTHORIZATION, v);
            }
            assert_eq!(req.send().await?.status(), StatusCode::UNAUTHORIZED, "{path} with {bad:?}");
        }
        assert_eq!(h.ua(path).send().await?.status(), StatusCode::OK, "{path}");
    }
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn ukrainealarm_answers_throttling_with_401() -> TestResult {
    let h = Harness::with(FeedSimConfig { ukrainealarm_requests_per_min: 3, ..FeedSimConfig::default() }).await?;
    for _ in 0..3 {
        assert_eq!(h.ua("/api/v3/alerts/status").send().await?.status(), StatusCode::OK);
    }
    let resp = h.ua("/api/v3/alerts/status").send().await?;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.bytes().await?.is_empty());
    // The other feeds keep their own budgets.
    assert_eq!(h.get().send().await?.status(), StatusCode::OK);
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn last_action_index_moves_on_every_change_and_only_then() -> TestResult {
    let h = Harness::new().await?;
    assert_eq!(h.status_index().await?, 0);
    h.sim.set_alerts(vec![kharkiv()]);
    assert_eq!(h.status_index().await?, 1);
    // The same list again is no action.
    h.sim.set_alerts(vec![kharkiv()]);
    assert_eq!(h.status_index().await?, 1);
    // A level change is one; an end and a start are two.
    h.sim.set_alerts(vec![SimAlert { alert_level: Some("yellow".into()), ..kharkiv() }]);
    assert_eq!(h.status_index().await?, 2);
    h.sim.set_alerts(vec![lviv_raion()]);
    assert_eq!(h.status_index().await?, 4);
    h.sim.set_alerts(vec![]);
    assert_eq!(h.status_index().await?, 5);
    h.stop().await;
    Ok(())
}

// ------------------------------------------------------------------ CAP

#[tokio::test]
async fn cap_publishes_an_alert_then_a_cancel_referencing_it() -> TestResult {
    let h = Harness::new().await?;
    let index = xml::parse(&h.cap("/cap/index.atom").await?);
    assert_eq!(index.name, "feed");
    assert_eq!(index.all("entry").count(), 0);

    h.sim.set_alerts(vec![kharkiv()]);
    let index = xml::parse(&h.cap("/cap/index.atom").await?);
    let entries: Vec<&xml::El> = index.all("entry").collect();
    assert_eq!(entries.len(), 1);
    // The NWS index's shape: a bare link, cap: summary elements.
    assert_eq!((entries[0].child("link").attr("rel"), entries[0].child("link").attr("type")), (None, None));
    assert_eq!(entries[0].text_of("msgType"), "Alert");
    assert_eq!(entries[0].child("geocode").text_of("value"), "UA63000000000041885");
    let href = entries[0].child("link").attr("href").expect("href").to_owned();
    assert_eq!(entries[0].text_of("id"), href);
    assert!(href.starts_with(&format!("{}/cap/messages/", h.sim.base_url())) && href.ends_with(".xml"), "{href}");
    let text = h.client.get(&href).send().await?.text().await?;
    assert!(text.contains("xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\""), "{text}");
    let alert = xml::parse(&text);
    assert_eq!(alert.name, "alert");
    assert_eq!(alert.text_of("msgType"), "Alert");
    assert_eq!(alert.text_of("status"), "Actual");
    assert_eq!(alert.text_of("scope"), "Public");
    assert_eq!(alert.text_of("sender"), "sim-cap@sirena.invalid");
    let sent = alert.text_of("sent");
    assert!(chrono::DateTime::parse_from_rfc3339(&sent).is_ok() && sent.ends_with("-00:00"), "{sent}");
    assert_eq!(alert.all("references").count(), 0);
    let infos: Vec<&xml::El> = alert.all("info").collect();
    let langs: Vec<String> = infos.iter().map(|i| i.text_of("language")).collect();
    assert_eq!(langs, ["uk-UA", "en-US"]);
    let events: Vec<String> = infos.iter().map(|i| i.text_of("event")).collect();
    assert_eq!(events, ["Повітряна тривога", "Air raid alert"]);
    for info in &infos {
        assert_eq!(info.text_of("category"), "Safety");
        assert_eq!(info.text_of("urgency"), "Immediate");
        assert_eq!(info.text_of("severity"), "Severe");
        assert_eq!(info.text_of("certainty"), "Observed");
        let code = info.child("eventCode");
        assert_eq!((code.text_of("valueName"), code.text_of("value")), ("alert_type".into(), "air_raid".into()));
        let area = info.child("area");
        assert_eq!(area.text_of("areaDesc"), "Харківська область");
        let geocode = area.child("geocode");
        assert_eq!(geocode.text_of("valueName"), "KATOTTG");
        assert_eq!(geocode.text_of("value"), "UA63000000000041885");
    }
    let identifier = alert.text_of("identifier");

    h.sim.set_alerts(vec![]);
    let index = xml::parse(&h.cap("/cap/index.atom").await?);
    let entries: Vec<&xml::El> = index.all("entry").collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1].child("link").attr("href"), Some(href.as_str()), "newest first");
    let cancel_href = entries[0].child("link").attr("href").expect("href");
    let cancel = xml::parse(&h.client.get(cancel_href).send().await?.text().await?);
    assert_eq!(cancel.text_of("msgType"), "Cancel");
    assert_ne!(cancel.text_of("identifier"), identifier);
    assert_eq!(cancel.text_of("references"), format!("sim-cap@sirena.invalid,{identifier},{sent}"));
    assert_eq!(cancel.child("info").text_of("urgency"), "Past");
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn cap_updates_reference_the_thread_and_geocode_is_omitted_without_a_code() -> TestResult {
    let h = Harness::new().await?;
    let no_code = SimAlert { katottg: None, alert_level: None, threats: vec![], ..kupiansk() };
    h.sim.set_alerts(vec![no_code.clone()]);
    h.sim.set_alerts(vec![SimAlert {
        alert_level: Some("red".into()),
        threats: vec![SimThreat::new("guided_aerial_bombs", "red")],
        ..no_code
    }]);
    let index = xml::parse(&h.cap("/cap/index.atom").await?);
    let hrefs: Vec<String> =
        index.all("entry").map(|e| e.child("link").attr("href").expect("href").to_owned()).collect();
    assert_eq!(hrefs.len(), 2);
    let update = xml::parse(&h.client.get(&hrefs[0]).send().await?.text().await?);
    let first = xml::parse(&h.client.get(&hrefs[1]).send().await?.text().await?);
    assert_eq!(update.text_of("msgType"), "Update");
    let expected = format!("sim-cap@sirena.invalid,{},{}", first.text_of("identifier"), first.text_of("sent"));
    assert_eq!(update.text_of("references"), expected);
    let info = update.child("info");
    assert_eq!(info.text_of("event"), "Загроза артобстрілу");
    let params: Vec<(String, String)> =
        info.all("parameter").map(|p| (p.text_of("valueName"), p.text_of("value"))).collect();
    assert_eq!(
        params,
        [("alert_level".to_owned(), "red".to_owned()), ("threat".to_owned(), "guided_aerial_bombs".to_owned())]
    );
    assert_eq!(info.child("area").all("geocode").count(), 0);
    assert_eq!(info.child("area").text_of("areaDesc"), "Куп’янська територіальна громада");
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn cap_evacuation_says_evacuate_with_the_instruction_per_language() -> TestResult {
    let h = Harness::new().await?;
    let evacuation = SimAlert {
        alert_type: "evacuation".into(),
        instructions: vec![
            ("uk-UA".into(), "Збір о 10:00 біля вокзалу.".into()),
            ("en-US".into(), "Gather at 10:00.".into()),
        ],
        ..kupiansk()
    };
    h.sim.set_alerts(vec![evacuation]);
    let index = xml::parse(&h.cap("/cap/index.atom").await?);
    let href = index.child("entry").child("link").attr("href").expect("href").to_owned();
    let alert = xml::parse(&h.client.get(&href).send().await?.text().await?);
    let infos: Vec<&xml::El> = alert.all("info").collect();
    let said: Vec<(String, String, String, String)> = infos
        .iter()
        .map(|i| (i.text_of("event"), i.text_of("responseType"), i.text_of("severity"), i.text_of("instruction")))
        .collect();
    assert_eq!(
        said,
        [
            ("Евакуація".into(), "Evacuate".into(), "Extreme".into(), "Збір о 10:00 біля вокзалу.".into()),
            ("Evacuation".into(), "Evacuate".into(), "Extreme".into(), "Gather at 10:00.".into()),
        ]
    );
    h.sim.set_alerts(vec![]);
    let index = xml::parse(&h.cap("/cap/index.atom").await?);
    let href = index.child("entry").child("link").attr("href").expect("href").to_owned();
    let cancel = xml::parse(&h.client.get(&href).send().await?.text().await?);
    assert_eq!(cancel.child("info").text_of("responseType"), "AllClear");
    assert_eq!(cancel.child("info").all("instruction").count(), 0);
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn cap_index_keeps_the_last_messages_only() -> TestResult {
    let h = Harness::with(FeedSimConfig { cap_keep: 3, requests_per_min: 1000, ..FeedSimConfig::default() }).await?;
    h.sim.set_alerts(vec![kharkiv()]);
    let index = xml::parse(&h.cap("/cap/index.atom").await?);
    let oldest = index.child("entry").child("link").attr("href").expect("href").to_owned();
    for i in 0..4 {
        h.sim.set_alerts(vec![SimAlert { started_at: at(11, i, 0), ..kharkiv() }]);
    }
    // 1 + 4 × (cancel + alert) messages, 3 kept.
    let index = xml::parse(&h.cap("/cap/index.atom").await?);
    assert_eq!(index.all("entry").count(), 3);
    assert_eq!(h.client.get(&oldest).send().await?.status(), StatusCode::NOT_FOUND);
    h.stop().await;
    Ok(())
}

// ------------------------------------------------------------------ faults per feed

#[tokio::test]
async fn a_stall_serves_the_data_as_it_stood_until_used_up() -> TestResult {
    let h = Harness::new().await?;
    h.sim.set_alerts(vec![kharkiv()]);
    h.sim.inject_for(FeedKind::UkraineAlarm, Fault::Stall, 3);
    h.sim.inject(Fault::Stall, 2);

    let before = h.status_index().await?;
    let lm_before = h.get().send().await?.headers().get(LAST_MODIFIED).cloned();
    h.sim.set_alerts(vec![kharkiv(), lviv_raion()]);

    // Same old data, still 200, on both stalled feeds.
    assert_eq!(h.status_index().await?, before);
    let old = h.ua_json("/api/v3/alerts").await?;
    assert_eq!(old.as_array().map(Vec::len), Some(1), "{old}");
    let resp = h.get().send().await?;
    assert_eq!(resp.headers().get(LAST_MODIFIED).cloned(), lm_before);
    let body: Value = resp.json().await?;
    assert_eq!(body["alerts"].as_array().map(Vec::len), Some(1));
    // CAP was not stalled: it already has the new message.
    let index = xml::parse(&h.cap("/cap/index.atom").await?);
    assert_eq!(index.all("entry").count(), 2);

    // Used up: the present again.
    assert_eq!(h.status_index().await?, before + 1);
    assert_eq!(h.ua_json("/api/v3/alerts").await?.as_array().map(Vec::len), Some(2));
    let body: Value = h.get().send().await?.json().await?;
    assert_eq!(body["alerts"].as_array().map(Vec::len), Some(2));
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_fault_hits_only_its_feed() -> TestResult {
    let h = Harness::new().await?;
    h.sim.set_alerts(vec![kharkiv()]);

    h.sim.inject_for(FeedKind::UkraineAlarm, Fault::Status(500), 1);
    assert_eq!(h.get().send().await?.status(), StatusCode::OK);
    h.cap("/cap/index.atom").await?;
    assert_eq!(h.ua("/api/v3/alerts").send().await?.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(h.ua("/api/v3/alerts").send().await?.status(), StatusCode::OK);

    h.sim.inject_for(FeedKind::Cap, Fault::Garbage, 1);
    assert_eq!(h.ua("/api/v3/alerts").send().await?.status(), StatusCode::OK);
    let garbage = h.cap("/cap/index.atom").await?;
    assert_eq!(garbage, "<html>502 Bad Gateway</html>");

    h.sim.inject(Fault::Unauthorized, 1);
    assert_eq!(h.ua("/api/v3/alerts/status").send().await?.status(), StatusCode::OK);
    let resp = h.get().send().await?;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.json::<Value>().await?, serde_json::json!({"message": "Unauthorized"}));

    // An empty list waits for a request that lists alerts.
    h.sim.inject_for(FeedKind::UkraineAlarm, Fault::EmptyList, 1);
    assert_eq!(h.status_index().await?, 1);
    assert_eq!(h.ua_json("/api/v3/alerts").await?, serde_json::json!([]));
    assert_eq!(h.ua_json("/api/v3/alerts").await?.as_array().map(Vec::len), Some(1));

    h.sim.inject_for(FeedKind::UkraineAlarm, Fault::Truncated, 1);
    let cut = h.ua("/api/v3/alerts").send().await?.bytes().await?;
    assert!(!cut.is_empty() && serde_json::from_slice::<Value>(&cut).is_err());
    h.sim.inject_for(FeedKind::Cap, Fault::Truncated, 1);
    let cut = h.cap("/cap/index.atom").await?;
    assert!(cut.starts_with("<?xml") && !cut.trim_end().ends_with("</feed>"), "{cut}");

    // alerts.in.ua saw only its own two requests.
    assert_eq!(h.sim.requests_for(FeedKind::AlertsInUa), 2);
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn requests_are_counted_per_feed_and_client() -> TestResult {
    let h = Harness::new().await?;
    for (agent, n) in [("poller-a", 2), ("poller-b", 3)] {
        for _ in 0..n {
            h.ua("/api/v3/alerts/status").header(reqwest::header::USER_AGENT, agent).send().await?;
        }
    }
    h.client
        .get(format!("{}/cap/index.atom", h.sim.base_url()))
        .header(reqwest::header::USER_AGENT, "poller-a")
        .send()
        .await?;
    let counts = h.sim.requests_by_client();
    assert_eq!(counts.get(&(FeedKind::UkraineAlarm, "poller-a".to_owned())), Some(&2));
    assert_eq!(counts.get(&(FeedKind::UkraineAlarm, "poller-b".to_owned())), Some(&3));
    assert_eq!(counts.get(&(FeedKind::Cap, "poller-a".to_owned())), Some(&1));
    assert_eq!(counts.len(), 3);
    assert_eq!(h.sim.requests_for(FeedKind::UkraineAlarm), 5);
    assert_eq!(h.sim.requests(), 0);
    h.stop().await;
    Ok(())
}

/// Two processes that poll with one `User-Agent` are two connections: the simulator
/// counts each, so a second poller (two nodes that both think they lead) shows.
#[tokio::test]
async fn requests_are_counted_per_connection() -> TestResult {
    let h = Harness::new().await?;
    let url = format!("{}/v1/alerts/active.json?token={}", h.sim.base_url(), FeedSimConfig::default().token);
    // Two clients, each with its own connection pool: two peers.
    let (a, b) = (reqwest::Client::new(), reqwest::Client::new());
    a.get(&url).header(reqwest::header::USER_AGENT, "sirena").send().await?;
    b.get(&url).header(reqwest::header::USER_AGENT, "sirena").send().await?;
    a.get(&url).header(reqwest::header::USER_AGENT, "sirena").send().await?;
    let peers: Vec<u64> =
        h.sim.requests_by_peer().into_iter().filter(|((f, _), _)| *f == FeedKind::AlertsInUa).map(|(_, n)| n).collect();
    let mut peers = peers;
    peers.sort();
    assert_eq!(peers, vec![1, 2], "one peer per connection, counted on its own");
    assert_eq!(h.sim.overlapping_peers(FeedKind::AlertsInUa), 1, "b polled between a's requests");
    assert_eq!(h.sim.requests_by_client().get(&(FeedKind::AlertsInUa, "sirena".to_owned())), Some(&3));
    h.stop().await;
    Ok(())
}

// ------------------------------------------------------------------ webhooks

/// What a tiny receiver on loopback got: the secret header's value and the body.
type Received = Arc<Mutex<Vec<(Option<String>, Vec<u8>)>>>;

async fn receiver(
    h: &Harness,
    status: StatusCode,
) -> Result<(String, Received), Box<dyn std::error::Error + Send + Sync>> {
    let got: Received = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let secret = headers.get("x-sirena-secret").and_then(|v| v.to_str().ok()).map(str::to_owned);
                sink.lock().expect("lock").push((secret, body.to_vec()));
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let stop = h.token.clone();
    h.tracker.spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await;
    });
    Ok((url, got))
}

async fn wait_for(got: &Received, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while got.lock().expect("lock").len() < n {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {n} pushes");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_webhook_push_reaches_a_receiver_on_loopback() -> TestResult {
    let h = Harness::new().await?;
    let (url, got) = receiver(&h, StatusCode::OK).await?;
    h.sim.set_alerts(vec![kharkiv(), kupiansk()]);

    // Any region of the oblast names its record.
    let status = h.sim.push_webhook(&url, "X-Sirena-Secret", "s3cret", 1309).await?;
    assert_eq!(status, 200);
    assert_eq!(h.sim.webhook_pushes(), 1);
    let (secret, body) = got.lock().expect("lock")[0].clone();
    assert_eq!(secret.as_deref(), Some("s3cret"));
    let record: Value = serde_json::from_slice(&body)?;
    let listed = h.ua_json("/api/v3/alerts").await?;
    assert_eq!(record, listed[0], "the same record as in /api/v3/alerts");

    assert!(matches!(
        h.sim.push_webhook("http://192.0.2.1/hook", "X-Sirena-Secret", "s", 22).await,
        Err(PushError::NotLoopback(_))
    ));
    assert!(matches!(
        h.sim.push_webhook(&url, "X-Sirena-Secret", "s", 5555).await,
        Err(PushError::UnknownRegion(5555))
    ));
    assert_eq!(h.sim.webhook_pushes(), 1);

    // The receiver's status comes back as it is.
    let (refusing, _) = receiver(&h, StatusCode::FORBIDDEN).await?;
    assert_eq!(h.sim.push_webhook(&refusing, "X-Sirena-Secret", "s", 22).await?, 403);
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn auto_push_sends_each_changed_oblast_in_order() -> TestResult {
    let h = Harness::new().await?;
    let (url, got) = receiver(&h, StatusCode::OK).await?;
    let (target_url, received) = (url.clone(), got.clone());
    h.sim.set_webhook(Some(WebhookTarget { url, secret_header: "X-Sirena-Secret".into(), secret: "s3cret".into() }));

    h.sim.set_alerts(vec![kharkiv(), lviv_raion()]);
    wait_for(&got, 2).await;
    // No change, no push: had it pushed, it would arrive before the next change's.
    h.sim.set_alerts(vec![kharkiv(), lviv_raion()]);
    h.sim.set_alerts(vec![lviv_raion()]);
    wait_for(&got, 3).await;

    let got = got.lock().expect("lock").clone();
    let ids: Vec<(Value, usize)> = got
        .iter()
        .map(|(secret, body)| {
            assert_eq!(secret.as_deref(), Some("s3cret"));
            let record: Value = serde_json::from_slice(body).expect("JSON");
            (record["regionId"].clone(), record["activeAlerts"].as_array().map_or(0, Vec::len))
        })
        .collect();
    // Kharkiv's all-clear push is its record with nothing active.
    assert_eq!(ids, vec![(Value::from("22"), 1), (Value::from("27"), 1), (Value::from("22"), 0)]);
    assert_eq!(h.sim.webhook_pushes(), 3);

    // Switched off, a change pushes nothing: switched on again, the next push is
    // the next change's, not the one made while off.
    h.sim.set_webhook(None);
    h.sim.set_alerts(vec![]);
    h.sim.set_webhook(Some(WebhookTarget {
        url: target_url,
        secret_header: "X-Sirena-Secret".into(),
        secret: "s3cret".into(),
    }));
    h.sim.set_alerts(vec![kharkiv()]);
    wait_for(&received, 4).await;
    let last: Value = serde_json::from_slice(&received.lock().expect("lock")[3].1)?;
    assert_eq!((last["regionId"].clone(), last["activeAlerts"].as_array().map_or(0, Vec::len)), (Value::from("22"), 1));
    assert_eq!(h.sim.webhook_pushes(), 4);
    h.stop().await;
    Ok(())
}

// ------------------------------------------------------------------ the adapters agree

#[tokio::test]
async fn both_adapters_decode_the_same_timeline_alike() -> TestResult {
    use sirena::sources::{alerts_in_ua, ukrainealarm};

    let h = Harness::new().await?;
    let tree = common::shipped().tree;
    let unmapped =
        SimAlert { location_uid: 9999, location_oblast_uid: 9999, location_oblast: "Десь".into(), ..kharkiv() };
    let odd_kind = SimAlert { alert_type: "drone_swarm".into(), ..kharkiv() };
    let fractional = SimAlert { started_at: at(9, 0, 0) + chrono::TimeDelta::milliseconds(250), ..lviv_raion() };
    h.sim.set_alerts(vec![kharkiv(), kupiansk(), fractional, odd_kind, unmapped]);

    let from_alerts_in_ua = alerts_in_ua::decode(&h.get().send().await?.bytes().await?, &tree)?;
    let ua_body = h.ua("/api/v3/alerts").send().await?.bytes().await?;
    let from_ukrainealarm = ukrainealarm::decode_alerts(&ua_body, &tree)?;
    // Each feed spells an unknown kind its own way (`drone_swarm`, `DRONE_SWARM`).
    let sorted = |mut v: Vec<sirena::alerts::state::ObservedAlert>| {
        v.sort_by(|a, b| a.key.cmp(&b.key));
        for a in &mut v {
            a.raw_kind = a.raw_kind.take().map(|k| k.to_ascii_lowercase());
        }
        v
    };
    let expected = sorted(from_alerts_in_ua.alerts);
    assert_eq!(expected.len(), 4, "{expected:?}");
    assert!(expected.iter().any(|a| !a.threats.is_empty() && a.level.is_some()), "levels and threats exercised");
    assert_eq!(sorted(from_ukrainealarm.alerts), expected);
    let ids = |u: &[sirena::sources::Unmapped]| u.iter().map(|u| u.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&from_ukrainealarm.unmapped), ids(&from_alerts_in_ua.unmapped));
    assert_eq!(ids(&from_ukrainealarm.unmapped), ["9999"]);

    // A webhook record decodes to that oblast's share of the same.
    let (url, got) = receiver(&h, StatusCode::OK).await?;
    h.sim.push_webhook(&url, "X-Sirena-Secret", "s", 22).await?;
    let pushed = got.lock().expect("lock")[0].1.clone();
    assert_eq!(ukrainealarm::record_region_id(&pushed)?, ukrainealarm::FeedId::Number(22));
    let kharkiv_part: Vec<_> = expected
        .iter()
        .filter(|a| {
            tree.is_within(&a.key.region, &sirena::regions::RegionId::parse("UA63000000000041885").expect("id"))
        })
        .cloned()
        .collect();
    assert_eq!(sorted(ukrainealarm::decode_record(&pushed, &tree)?.alerts), kharkiv_part);
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn each_version_notes_when_its_whole_list_first_went_out() -> TestResult {
    let h = Harness::new().await?;
    let v1 = h.sim.set_alerts(vec![kharkiv()]);
    let v2 = h.sim.set_alerts(vec![kharkiv(), kupiansk()]);
    assert_eq!(v2, v1 + 1);
    assert_eq!(h.sim.first_served(FeedKind::AlertsInUa, v2), None);

    // A truncated body is not the list served.
    h.sim.inject(Fault::Truncated, 1);
    let _ = h.get().send().await?.bytes().await;
    assert_eq!(h.sim.first_served(FeedKind::AlertsInUa, v2), None);

    let before = std::time::Instant::now();
    let resp = h.get().send().await?;
    let last_modified = resp.headers().get(LAST_MODIFIED).expect("Last-Modified").clone();
    resp.bytes().await?;
    let after = std::time::Instant::now();
    let first = h.sim.first_served(FeedKind::AlertsInUa, v2).expect("served");
    assert!(before <= first && first <= after);
    // A later body, or a 304, leaves the first instant as it was; v1 was never served.
    h.get().send().await?.bytes().await?;
    h.get().header(IF_MODIFIED_SINCE, last_modified).send().await?;
    assert_eq!(h.sim.first_served(FeedKind::AlertsInUa, v2), Some(first));
    assert_eq!(h.sim.first_served(FeedKind::AlertsInUa, v1), None);

    // ukrainealarm counts its whole list, not the cheap status.
    h.ua_json("/api/v3/alerts/status").await?;
    assert_eq!(h.sim.first_served(FeedKind::UkraineAlarm, v2), None);
    h.ua_json("/api/v3/alerts").await?;
    assert!(h.sim.first_served(FeedKind::UkraineAlarm, v2).is_some());
    h.stop().await;
    Ok(())
}
