//! `sirena preview ORDER_ID` as an operator runs it: who an order would reach, by
//! channel, language and place, what each would read, and when the last would have it;
//! nothing is sent or written.

use std::path::{Path, PathBuf};
use std::process::Command;

use sirena::channels::ChannelKind;
use sirena::messages::Lang;
use sirena::regions::RegionId;
use sirena::store::{Import, SqliteStore, Store};

const BIN: &str = env!("CARGO_BIN_EXE_sirena");
const KINDRASHIVKA: &str = "UA63080070010082928";
const LVIV_OBLAST: &str = "UA46000000000026241";

const ORDER: &str = r#"
[[evacuation]]
id = "kindrashivka-preview"
status = "mandatory"
targets = ["UA63080070000080622"]
issued_at = 2023-11-06T08:00:00+02:00
destination = { uk = "Харків", en = "Kharkiv" }
hotline = "0 800 000 000"
"#;

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config");
    sirena::demo::write_embedded_config(&config).expect("config");
    let kharkiv = config.join("regions/kharkiv.toml");
    let text = std::fs::read_to_string(&kharkiv).expect("kharkiv.toml");
    std::fs::write(&kharkiv, format!("{text}{ORDER}")).expect("write");
    (dir, config)
}

async fn seed(config: &Path) -> (i64, usize) {
    let loaded = sirena::config::load(config).expect("valid");
    let store = SqliteStore::open(&loaded.store_path().expect("sqlite")).expect("store");
    let row = |kind, address: &str, lang, place: &str| Import {
        kind,
        address: address.to_owned(),
        lang,
        places: vec![RegionId::parse(place).expect("id")],
    };
    store
        .import(vec![
            row(ChannelKind::TelegramChat, "1001", Lang::Uk, KINDRASHIVKA),
            row(ChannelKind::TelegramChat, "1002", Lang::En, KINDRASHIVKA),
            row(ChannelKind::Sms, "+380670000001", Lang::Uk, KINDRASHIVKA),
            row(ChannelKind::TelegramChat, "2001", Lang::Uk, LVIV_OBLAST),
        ])
        .await
        .expect("import");
    let counts = store.counts().await.expect("counts");
    (counts.total() as i64, store.export().await.expect("export").len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_counts_who_would_be_reached_and_shows_every_text_without_sending() {
    let (_dir, config) = setup();
    let (deliveries_before, subscribers) = seed(&config).await;
    assert_eq!(subscribers, 4);
    let out =
        Command::new(BIN).args(["preview", "kindrashivka-preview", "--config"]).arg(&config).output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("would reach 3 recipients"), "Lviv is not reached:\n{text}");
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split_whitespace().collect()).collect();
    for row in [["telegram", "uk", "1"], ["telegram", "en", "1"], ["sms", "uk", "1"]] {
        assert!(rows.iter().any(|r| r == &row), "no {row:?} row:\n{text}");
    }
    assert!(text.contains("Кіндрашівка"), "by place:\n{text}");
    assert!(text.contains("🚨 Обов’язкова евакуація") && text.contains("Mandatory evacuation"), "{text}");
    assert!(text.contains("SMS part"), "the SMS text's part count:\n{text}");
    assert!(text.contains("last telegram recipient about 0 s"), "{text}");
    assert!(text.contains("no sms channel is configured"), "the shipped config has no gateway:\n{text}");
    assert!(!text.contains("<b>"), "texts as residents read them:\n{text}");
    // Nothing was written: no event, no delivery.
    let loaded = sirena::config::load(&config).expect("valid");
    let store = SqliteStore::open(&loaded.store_path().expect("sqlite")).expect("store");
    assert_eq!(store.counts().await.expect("counts").total() as i64, deliveries_before);
    assert!(store.latest_event("evacuation:kindrashivka-preview").await.expect("read").is_none());
}

#[test]
fn an_unknown_order_is_an_error_that_lists_the_orders() {
    let (_dir, config) = setup();
    let out = Command::new(BIN).args(["preview", "kindrashivka-2099", "--config"]).arg(&config).output().expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no evacuation order `kindrashivka-2099`") && err.contains("kindrashivka-preview"), "{err}");
}
