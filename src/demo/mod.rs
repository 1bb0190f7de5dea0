//! `sirena demo`: the Kupiansk scenario of DESIGN §13, end to end.
//!
//! Everything real runs: the alerts.in.ua adapter polls the feed simulator over
//! loopback HTTP, the region files are rewritten on disk and picked up by the file
//! watcher, residents subscribe by chatting with the real bot through the Telegram
//! simulator, and the dispatcher sends through teloxide under the simulator's enforced
//! limits. The demo only plays the outside world (the feed, the operator, the
//! residents) and checks what each resident received against what they should have.
//!
//! [`Harness`] is that outside world, shared with `sirena bench …` and the
//! end-to-end tests.

mod scenario;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::alerts::Priority;
use crate::channels::ChannelKind;
use crate::config::secret::Secret;
use crate::config::{self, Deadlines, TelegramLimits};
use crate::daemon::{self, Fanout, Running, Secrets};
use crate::matcher::IndexDelta;
use crate::messages::Lang;
use crate::regions::RegionId;
use crate::sim::feed::{Fault, FeedKind, FeedSim, FeedSimConfig, SimAlert};
use crate::sim::sms::generic::{GenericSmsSim, GenericSmsSimConfig};
use crate::sim::sms::turbosms::{TurboSmsSim, TurboSmsSimConfig};
use crate::sim::sms::twilio::{TwilioSim, TwilioSimConfig};
use crate::sim::telegram::{TelegramSim, TelegramSimConfig};
use crate::store::{Import, SqliteStore, Store, SubscriberId};

pub use scenario::{run, sms_phones};

/// The shipped config files, embedded so the demo runs from any directory.
pub const EMBEDDED_CONFIG: &[(&str, &str)] = &[
    ("sirena.toml", include_str!("../../config/sirena.toml")),
    ("regions/ukraine.toml", include_str!("../../config/regions/ukraine.toml")),
    ("regions/kharkiv.toml", include_str!("../../config/regions/kharkiv.toml")),
    ("regions/lviv.toml", include_str!("../../config/regions/lviv.toml")),
    ("locales/uk/alerts.ftl", include_str!("../../config/locales/uk/alerts.ftl")),
    ("locales/uk/bot.ftl", include_str!("../../config/locales/uk/bot.ftl")),
    ("locales/uk/reload.ftl", include_str!("../../config/locales/uk/reload.ftl")),
    ("locales/en/alerts.ftl", include_str!("../../config/locales/en/alerts.ftl")),
    ("locales/en/bot.ftl", include_str!("../../config/locales/en/bot.ftl")),
    ("locales/en/reload.ftl", include_str!("../../config/locales/en/reload.ftl")),
    ("locales/uk/operators.ftl", include_str!("../../config/locales/uk/operators.ftl")),
    ("locales/en/operators.ftl", include_str!("../../config/locales/en/operators.ftl")),
    ("locales/uk/drill.ftl", include_str!("../../config/locales/uk/drill.ftl")),
    ("locales/en/drill.ftl", include_str!("../../config/locales/en/drill.ftl")),
    ("locales/uk/bot-help.ftl", include_str!("../../config/locales/uk/bot-help.ftl")),
    ("locales/uk/bot-location.ftl", include_str!("../../config/locales/uk/bot-location.ftl")),
    ("locales/en/bot-help.ftl", include_str!("../../config/locales/en/bot-help.ftl")),
    ("locales/en/bot-location.ftl", include_str!("../../config/locales/en/bot-location.ftl")),
    ("locales/uk/bot-flood.ftl", include_str!("../../config/locales/uk/bot-flood.ftl")),
    ("locales/en/bot-flood.ftl", include_str!("../../config/locales/en/bot-flood.ftl")),
];

/// The environment variables the written `sirena.toml` names for the simulators'
/// tokens; a daemon started as a process (`sirena bench crash`) gets them set.
pub const TELEGRAM_TOKEN_ENV: &str = "SIRENA_DEMO_TELEGRAM_TOKEN";
pub const ALERTS_TOKEN_ENV: &str = "SIRENA_DEMO_ALERTS_TOKEN";
/// Where the demo daemon finds the SMS gateways' tokens.
pub const TURBOSMS_TOKEN_ENV: &str = "SIRENA_DEMO_TURBOSMS_TOKEN";
pub const TWILIO_TOKEN_ENV: &str = "SIRENA_DEMO_TWILIO_TOKEN";
pub const GENERIC_TOKEN_ENV: &str = "SIRENA_DEMO_GENERIC_SMS_KEY";

/// Base URLs of the SMS simulators the settings point at.
#[derive(Clone, Debug, Default)]
pub struct SmsUrls {
    pub turbosms: String,
    pub twilio: String,
    /// The daemon's own endpoint (`http://127.0.0.1:<port>`), where delivery reports go.
    pub reports: String,
    /// The generic API's full URL (`GenericSmsSim::url`).
    pub generic: String,
    /// `[http] listen` when something else (the Telegram webhook) needs the endpoint.
    pub listen: String,
}

/// Where the demo daemon finds the Telegram webhook's secret token, and its value.
pub const TELEGRAM_WEBHOOK_SECRET_ENV: &str = "SIRENA_DEMO_TELEGRAM_WEBHOOK_SECRET";
pub const TELEGRAM_WEBHOOK_SECRET: &str = "sim-telegram-hook-secret";
/// The public side of the demo's Telegram webhook; the simulator's proxy maps it to the
/// daemon's loopback endpoint.
pub const TELEGRAM_WEBHOOK_PUBLIC: &str = "https://bot.sim.example";
pub const TELEGRAM_WEBHOOK_URL: &str = "https://bot.sim.example/telegram/sirena";

/// Where the demo daemon finds the SMS gateways' delivery report secret, and its value.
pub const SMS_REPORT_SECRET_ENV: &str = "SIRENA_DEMO_SMS_REPORT_SECRET";
pub const SMS_REPORT_SECRET: &str = "sim-report-secret";

/// Where the demo daemon finds the ukrainealarm webhook's secret, and its value.
pub const WEBHOOK_SECRET_ENV: &str = "SIRENA_DEMO_WEBHOOK_SECRET";
pub const WEBHOOK_SECRET: &str = "sim-webhook-secret";
/// Where the demo daemon finds the ukrainealarm key.
pub const UKRAINEALARM_TOKEN_ENV: &str = "SIRENA_DEMO_UKRAINEALARM_TOKEN";

/// The simulators, a config directory pointing at them, and a running daemon.
pub struct Harness {
    pub feed: FeedSim,
    pub telegram: TelegramSim,
    pub config_dir: PathBuf,
    pub daemon: Running,
    pub fanouts: broadcast::Receiver<Fanout>,
    pub started: Instant,
    /// The feeds the daemon polls.
    pub sources: Vec<FeedKind>,
    /// The SMS gateways' simulators, when `Options::sms` names them.
    pub turbosms: Option<TurboSmsSim>,
    pub twilio: Option<TwilioSim>,
    /// One generic API simulator serves both generic kinds.
    pub generic: Option<GenericSmsSim>,
    secrets: Secrets,
    sims_cancel: CancellationToken,
    sims: TaskTracker,
    _dir: tempfile::TempDir,
}

/// How the demo world is set up. Poll intervals far below production are fine here:
/// the feed simulator is told the same budget and enforces it.
#[derive(Clone, Debug)]
pub struct Options {
    pub poll: Duration,
    pub requests_per_min: u32,
    /// Limits the Telegram simulator enforces, its latency and so on.
    pub telegram_sim: TelegramSimConfig,
    /// Limits sirena's own limiter applies (normally the same as the simulator's).
    pub telegram_limits: TelegramLimits,
    pub paid_broadcast: Vec<Priority>,
    pub send_timeout: Duration,
    pub max_in_flight: usize,
    pub retry_base: Duration,
    pub lease: Duration,
    pub superseded: &'static str,
    pub deadlines: Deadlines,
    /// Subscribers put in the store before the daemon starts (its index is built from
    /// them), as an import would.
    pub seed: Vec<Import>,
    /// Extra text appended to the shipped `regions/kharkiv.toml` (an order in force at
    /// start).
    pub kharkiv_extra: String,
    /// Appended to `sirena.toml` (tables that come last, such as `[[drill]]`).
    pub settings_extra: String,
    /// Telegram channels of regions of the Kharkiv file: (region id, `@name` or
    /// `-100…`), written into each region's table.
    pub region_channels: Vec<(String, String)>,
    /// Wraps the store the daemon runs on (tests use it to make the store fail).
    pub wrap_store: Option<StoreWrapper>,
    /// The feeds the daemon polls, all served by the one feed simulator from one
    /// timeline; each becomes a `[[source]]` named after its kind.
    pub sources: Vec<FeedKind>,
    /// `[alerts]`: when a source is stale, and how long an implausible snapshot is held.
    pub stale_after: Duration,
    pub hold_implausible: Duration,
    /// The daemon listens on `127.0.0.1:0` and its ukrainealarm source takes webhook
    /// pushes ([`Harness::webhook`]).
    pub webhook: bool,
    /// Faults the feed simulator serves from the daemon's very first poll on.
    pub feed_faults: Vec<(FeedKind, Fault, u32)>,
    /// `[telegram] operators`: user ids that get the operators' notices.
    pub operators: Vec<i64>,
    /// SMS gateways, in failover order, each served by its simulator.
    pub sms: Vec<SmsKind>,
    /// `per_sec` of every configured SMS gateway; `None` keeps 9 for TurboSMS and 50
    /// for Twilio. The simulators' limits must allow it (`turbosms_sim`, `twilio_sim`).
    pub sms_per_sec: Option<u32>,
    /// Limits and identity the SMS simulators run with.
    pub turbosms_sim: TurboSmsSimConfig,
    pub twilio_sim: TwilioSimConfig,
    /// TurboSMS `batch` and `requests_per_sec`; `None` keeps the defaults.
    pub sms_batch: Option<usize>,
    pub sms_requests_per_sec: Option<u32>,
    /// TurboSMS's Viber-with-SMS-fallback mode.
    pub viber: bool,
    /// The gateways post delivery reports to the daemon's `[http]` endpoint, which
    /// listens on a free loopback port chosen before the daemon starts.
    pub sms_reports: bool,
    pub generic_sim: GenericSmsSimConfig,
    /// `[telegram] mode = "webhook"`: Telegram (the simulator) posts updates to the
    /// daemon's `[http]` endpoint, on a free loopback port, behind its proxy.
    pub telegram_webhook: bool,
    /// `[telegram] handle_timeout`; `None` keeps the default.
    pub handle_timeout: Option<Duration>,
}

/// The SMS gateways the harness can simulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmsKind {
    TurboSms,
    Twilio,
    /// `kind = "http"` posting a JSON template (gateway `generic-json`).
    GenericJson,
    /// `kind = "http"` posting a form template (gateway `generic-form`).
    GenericForm,
}

impl SmsKind {
    /// The gateway's name in the written settings.
    pub fn name(self) -> &'static str {
        match self {
            SmsKind::TurboSms => "turbosms",
            SmsKind::Twilio => "twilio",
            SmsKind::GenericJson => "generic-json",
            SmsKind::GenericForm => "generic-form",
        }
    }

    pub fn is_generic(self) -> bool {
        matches!(self, SmsKind::GenericJson | SmsKind::GenericForm)
    }
}

/// A loopback port free a moment ago, for a listener whose address must be written
/// into the config before the daemon binds it.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A function from the store the harness opened to the one the daemon gets.
#[derive(Clone)]
pub struct StoreWrapper(pub Arc<WrapFn>);

type WrapFn = dyn Fn(Arc<dyn Store>) -> Arc<dyn Store> + Send + Sync;

impl std::fmt::Debug for StoreWrapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreWrapper")
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            poll: Duration::from_millis(250),
            requests_per_min: 600,
            telegram_sim: TelegramSimConfig::default(),
            telegram_limits: TelegramLimits::default(),
            paid_broadcast: Vec::new(),
            send_timeout: Duration::from_secs(5),
            max_in_flight: 16,
            retry_base: Duration::from_secs(1),
            lease: Duration::from_secs(30),
            superseded: "line",
            deadlines: Deadlines::default(),
            seed: Vec::new(),
            kharkiv_extra: String::new(),
            settings_extra: String::new(),
            region_channels: Vec::new(),
            wrap_store: None,
            sources: vec![FeedKind::AlertsInUa],
            stale_after: Duration::from_secs(60),
            hold_implausible: Duration::from_secs(300),
            webhook: false,
            feed_faults: Vec::new(),
            operators: Vec::new(),
            sms: Vec::new(),
            sms_per_sec: None,
            turbosms_sim: TurboSmsSimConfig::default(),
            twilio_sim: TwilioSimConfig::default(),
            sms_batch: None,
            sms_requests_per_sec: None,
            viber: false,
            sms_reports: false,
            generic_sim: GenericSmsSimConfig::default(),
            telegram_webhook: false,
            handle_timeout: None,
        }
    }
}

fn duration(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

impl Options {
    /// The settings file pointing at the simulators; `sirena bench crash` writes it
    /// for a daemon it runs as a separate process.
    pub fn settings(&self, feed: &str, telegram: &str) -> String {
        self.settings_with_sms(feed, telegram, &SmsUrls::default())
    }

    /// The settings, with `[sms]` pointed at the SMS simulators.
    pub fn settings_with_sms(&self, feed: &str, telegram: &str, sms: &SmsUrls) -> String {
        let l = &self.telegram_limits;
        let poll = duration(self.poll);
        let rpm = self.requests_per_min;
        let sources: String = self
            .sources
            .iter()
            .map(|kind| {
                let (kind, at) = match kind {
                    FeedKind::AlertsInUa => ("alerts_in_ua", format!("base_url = \"{feed}\"\ntoken_env = \"{ALERTS_TOKEN_ENV}\"")),
                    FeedKind::UkraineAlarm => {
                        let hook = if self.webhook {
                            format!("\nwebhook_secret_env = \"{WEBHOOK_SECRET_ENV}\"")
                        } else {
                            String::new()
                        };
                        ("ukrainealarm", format!("base_url = \"{feed}\"\ntoken_env = \"{UKRAINEALARM_TOKEN_ENV}\"{hook}"))
                    }
                    FeedKind::Cap => ("cap", format!("url = \"{feed}/cap/index.atom\"")),
                };
                format!(
                    "[[source]]\nkind = \"{kind}\"\n{at}\npoll = \"{poll}\"\ntimeout = \"1s\"\nmax_requests_per_min = {rpm}\n\n"
                )
            })
            .collect();
        let listen = match sms.listen.as_str() {
            "" => sms.reports.strip_prefix("http://").unwrap_or("127.0.0.1:0"),
            listen => listen,
        };
        let http = if self.webhook || !sms.reports.is_empty() || self.telegram_webhook {
            format!("[http]\nlisten = \"{listen}\"\n\n")
        } else {
            String::new()
        };
        let mut sms_section = String::new();
        if !self.sms.is_empty() {
            sms_section.push_str("[sms]\nmax_parts = 2\n\n");
            let reports = if sms.reports.is_empty() {
                String::new()
            } else {
                format!("report_secret_env = \"{SMS_REPORT_SECRET_ENV}\"\n")
            };
            for kind in &self.sms {
                sms_section.push_str(&match kind {
                    SmsKind::TurboSms => {
                        let mut extra = reports.clone();
                        if let Some(b) = self.sms_batch {
                            extra.push_str(&format!("batch = {b}\n"));
                        }
                        if let Some(r) = self.sms_requests_per_sec {
                            extra.push_str(&format!("requests_per_sec = {r}\n"));
                        }
                        if self.viber {
                            extra.push_str("viber = true\n");
                        }
                        format!(
                            "[[sms.gateway]]\nname = \"turbosms\"\nkind = \"turbosms\"\nbase_url = \"{}\"\ntoken_env = \"{TURBOSMS_TOKEN_ENV}\"\nsender = \"SIRENA\"\nper_sec = {}\ntimeout = \"1s\"\n{extra}\n",
                            sms.turbosms,
                            self.sms_per_sec.unwrap_or(9)
                        )
                    }
                    SmsKind::Twilio => {
                        let mut extra = reports.clone();
                        if !sms.reports.is_empty() {
                            extra.push_str(&format!("report_url = \"{}/reports/twilio\"\n", sms.reports));
                        }
                        format!(
                            "[[sms.gateway]]\nname = \"twilio\"\nkind = \"twilio\"\nbase_url = \"{}\"\naccount_sid = \"{}\"\ntoken_env = \"{TWILIO_TOKEN_ENV}\"\nfrom = \"SIRENA\"\nper_sec = {}\ntimeout = \"1s\"\n{extra}\n",
                            sms.twilio,
                            self.twilio_sim.account_sid,
                            self.sms_per_sec.unwrap_or(50)
                        )
                    }
                    SmsKind::GenericJson | SmsKind::GenericForm => self.generic_gateway(*kind, &sms.generic),
                });
            }
        }
        let paid: Vec<String> = self.paid_broadcast.iter().map(|p| format!("\"{}\"", p.as_str())).collect();
        let deadlines: String = Priority::ALL
            .iter()
            .map(|p| {
                let d = self.deadlines.of(*p).map_or("none".to_owned(), duration);
                format!("{} = \"{d}\"\n", p.as_str())
            })
            .collect();
        let mut telegram_extra = String::new();
        if self.telegram_webhook {
            telegram_extra.push_str(&format!(
                "mode = \"webhook\"\nwebhook_url = \"{TELEGRAM_WEBHOOK_URL}\"\nwebhook_secret_env = \"{TELEGRAM_WEBHOOK_SECRET_ENV}\"\n"
            ));
        }
        if let Some(t) = self.handle_timeout {
            telegram_extra.push_str(&format!("handle_timeout = \"{}\"\n", duration(t)));
        }
        format!(
            r#"# Written by sirena demo: the shipped settings, pointed at the simulators.
[store]
path = "sirena.db"

{sources}{http}{sms_section}[telegram]
api_url = "{telegram}"
token_env = "{telegram_env}"
long_poll = "1s"
send_timeout = "{send_timeout}"
operators = [{operators}]
paid_broadcast = [{paid}]
limits = {{ global_per_sec = {gps}, paid_per_sec = {pps}, per_chat_per_sec = {pcs}, group_per_min = {gpm}, margin = "{margin}" }}
{telegram_extra}
[alerts]
stale_after = "{stale_after}"
hold_implausible = "{hold}"

[dispatch]
max_in_flight = {mif}
retry_base = "{retry_base}"
lease = "{lease}"
superseded = "{superseded}"

[dispatch.deadlines]
{deadlines}{settings_extra}"#,
            settings_extra = self.settings_extra,
            telegram_env = TELEGRAM_TOKEN_ENV,
            operators = self.operators.iter().map(i64::to_string).collect::<Vec<_>>().join(", "),
            stale_after = duration(self.stale_after),
            hold = duration(self.hold_implausible),
            send_timeout = duration(self.send_timeout),
            paid = paid.join(", "),
            gps = l.global_per_sec,
            pps = l.paid_per_sec,
            pcs = l.per_chat_per_sec,
            gpm = l.group_per_min,
            margin = duration(l.margin),
            mif = self.max_in_flight,
            retry_base = duration(self.retry_base),
            lease = duration(self.lease),
            superseded = self.superseded,
        )
    }
}

impl Options {
    /// A `kind = "http"` gateway for the generic simulator, as an operator would write it.
    fn generic_gateway(&self, kind: SmsKind, url: &str) -> String {
        let g = &self.generic_sim;
        let (content_type, body) = match kind {
            SmsKind::GenericForm => (
                "application/x-www-form-urlencoded",
                format!(
                    "{}={{to_digits}}&{}={{text}}&{}={{id}}&{}={{sender}}",
                    g.to_field, g.text_field, g.id_field, g.sender_field
                ),
            ),
            _ => (
                "application/json",
                format!(
                    "{{\"{}\": \"{{to}}\", \"{}\": \"{{text}}\", \"{}\": \"{{id}}\", \"{}\": \"{{sender}}\"}}",
                    g.to_field, g.text_field, g.id_field, g.sender_field
                ),
            ),
        };
        format!(
            "[[sms.gateway]]\nname = \"{name}\"\nkind = \"http\"\nurl = \"{url}\"\ntoken_env = \"{GENERIC_TOKEN_ENV}\"\n\
             headers = {{ \"{header}\" = \"{{token}}\" }}\ncontent_type = \"{content_type}\"\nbody = '{body}'\n\
             id_path = \"/message_id\"\nsender = \"SIRENA\"\nper_sec = {per_sec}\ntimeout = \"1s\"\n\n",
            name = kind.name(),
            header = g.auth_header,
            per_sec = self.sms_per_sec.unwrap_or(10),
        )
    }
}

impl Harness {
    /// Starts both simulators, writes the embedded config (pointed at them) into a
    /// temporary directory, seeds the store, and starts the daemon on it.
    pub async fn start(opts: Options) -> anyhow::Result<Harness> {
        let sims_cancel = CancellationToken::new();
        let sims = TaskTracker::new();
        let feed_cfg = FeedSimConfig {
            requests_per_min: opts.requests_per_min,
            ukrainealarm_requests_per_min: opts.requests_per_min,
            ..FeedSimConfig::default()
        };
        let mut source_tokens = BTreeMap::new();
        for kind in &opts.sources {
            match kind {
                FeedKind::AlertsInUa => source_tokens.insert("alerts_in_ua".to_owned(), feed_cfg.token.clone()),
                FeedKind::UkraineAlarm => {
                    source_tokens.insert("ukrainealarm".to_owned(), feed_cfg.ukrainealarm_key.clone())
                }
                FeedKind::Cap => None,
            };
        }
        let feed = FeedSim::start(feed_cfg, sims_cancel.clone(), &sims).await.context("feed simulator")?;
        for (kind, fault, times) in &opts.feed_faults {
            feed.inject_for(*kind, fault.clone(), *times);
        }
        let reports = match opts.sms_reports {
            true => format!("http://127.0.0.1:{}", free_port()?),
            false => String::new(),
        };
        let mut turbosms_cfg = opts.turbosms_sim.clone();
        if !reports.is_empty() {
            turbosms_cfg.dlr = Some(crate::sim::sms::DlrTarget {
                url: format!("{reports}/reports/turbosms"),
                secret: crate::sim::sms::DlrSecret::Path(SMS_REPORT_SECRET.to_owned()),
            });
        }
        let turbosms = match opts.sms.contains(&SmsKind::TurboSms) {
            true => Some(TurboSmsSim::start(turbosms_cfg, sims_cancel.clone(), &sims).await?),
            false => None,
        };
        let twilio = match opts.sms.contains(&SmsKind::Twilio) {
            true => Some(TwilioSim::start(opts.twilio_sim.clone(), sims_cancel.clone(), &sims).await?),
            false => None,
        };
        let generic = match opts.sms.iter().any(|k| k.is_generic()) {
            true => Some(GenericSmsSim::start(opts.generic_sim.clone(), sims_cancel.clone(), &sims).await?),
            false => None,
        };
        let listen = match (opts.telegram_webhook, reports.strip_prefix("http://")) {
            (true, Some(listen)) => listen.to_owned(),
            (true, None) => format!("127.0.0.1:{}", free_port()?),
            (false, _) => String::new(),
        };
        let sms_urls = SmsUrls {
            turbosms: turbosms.as_ref().map(TurboSmsSim::base_url).unwrap_or_default(),
            twilio: twilio.as_ref().map(TwilioSim::base_url).unwrap_or_default(),
            reports,
            generic: generic.as_ref().map(GenericSmsSim::url).unwrap_or_default(),
            listen,
        };
        let tg_cfg = opts.telegram_sim.clone();
        let tg_token = tg_cfg.token.clone();
        let telegram = TelegramSim::start(tg_cfg, sims_cancel.clone(), &sims).await.context("Telegram simulator")?;
        if opts.telegram_webhook {
            telegram.set_webhook_proxy(TELEGRAM_WEBHOOK_PUBLIC, &format!("http://{}", sms_urls.listen));
        }

        let dir = tempfile::tempdir().context("temporary directory")?;
        let config_dir = dir.path().join("config");
        write_embedded_config(&config_dir)?;
        std::fs::write(
            config_dir.join("sirena.toml"),
            opts.settings_with_sms(&feed.base_url(), &telegram.base_url(), &sms_urls),
        )?;
        let kharkiv = config_dir.join("regions/kharkiv.toml");
        let mut text = std::fs::read_to_string(&kharkiv)?;
        for (region, channel) in &opts.region_channels {
            let table = format!("id = \"{region}\"\n");
            anyhow::ensure!(text.contains(&table), "no region {region} in regions/kharkiv.toml");
            text = text.replacen(&table, &format!("{table}channel = \"{channel}\"\n"), 1);
        }
        text.push_str(&opts.kharkiv_extra);
        std::fs::write(&kharkiv, text)?;
        let config = config::load(&config_dir).map_err(|e| anyhow::anyhow!("embedded config invalid:\n{e}"))?;
        let store = SqliteStore::open(&config.store_path().context("the demo runs on SQLite")?)?;
        for row in &opts.seed {
            if row.kind == ChannelKind::TelegramChat
                && let Ok(chat) = row.address.parse::<i64>()
            {
                telegram.add_user(chat, "Resident", Some(row.lang.code()));
            }
        }
        store.import(opts.seed).await?;
        let secrets = Secrets {
            telegram: Some(config::secret::Secret::new(tg_token)),
            telegram_webhook: opts.telegram_webhook.then(|| Secret::new(TELEGRAM_WEBHOOK_SECRET)),
            sources: source_tokens.into_iter().map(|(name, t)| (name, config::secret::Secret::new(t))).collect(),
            sms: opts
                .sms
                .iter()
                .map(|k| match k {
                    SmsKind::TurboSms => (k.name().to_owned(), Secret::new(opts.turbosms_sim.token.clone())),
                    SmsKind::Twilio => (k.name().to_owned(), Secret::new(opts.twilio_sim.auth_token.clone())),
                    SmsKind::GenericJson | SmsKind::GenericForm => {
                        (k.name().to_owned(), Secret::new(opts.generic_sim.auth_value.clone()))
                    }
                })
                .collect(),
            sms_reports: match opts.sms_reports {
                true => opts.sms.iter().map(|k| (k.name().to_owned(), Secret::new(SMS_REPORT_SECRET))).collect(),
                false => BTreeMap::new(),
            },
            webhooks: if opts.webhook {
                [("ukrainealarm".to_owned(), config::secret::Secret::new(WEBHOOK_SECRET))].into()
            } else {
                BTreeMap::new()
            },
            store_password: None,
        };
        let mut daemon = match &opts.wrap_store {
            Some(wrap) => daemon::start_with_store(config, secrets.clone(), (wrap.0)(Arc::new(store))).await?,
            None => {
                drop(store);
                daemon::start(config, secrets.clone()).await?
            }
        };
        let fanouts = daemon.first_fanouts.take().unwrap_or_else(|| daemon.fanouts.subscribe());
        Ok(Harness {
            turbosms,
            twilio,
            generic,
            sources: opts.sources.clone(),
            feed,
            telegram,
            config_dir,
            daemon,
            fanouts,
            started: Instant::now(),
            secrets,
            sims_cancel,
            sims,
            _dir: dir,
        })
    }

    /// Stops the daemon; the simulators keep running. Follow with [`Harness::start_daemon`].
    pub async fn stop_daemon(&self) {
        self.daemon.shutdown().await;
    }

    /// Starts a new daemon on the same config directory and store file, as a restart by
    /// systemd would.
    pub async fn start_daemon(&mut self) -> anyhow::Result<()> {
        let config = config::load(&self.config_dir).map_err(|e| anyhow::anyhow!("config invalid:\n{e}"))?;
        self.daemon = daemon::start(config, self.secrets.clone()).await?;
        self.fanouts = self.daemon.first_fanouts.take().unwrap_or_else(|| self.daemon.fanouts.subscribe());
        Ok(())
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.daemon.store
    }

    /// A resident of `place` who has started the bot, subscribed straight in the store
    /// (as an import would) while the daemon runs.
    pub async fn add_resident(&self, chat: i64, place: &str, lang: Lang) -> anyhow::Result<SubscriberId> {
        self.telegram.add_user(chat, "Resident", Some(lang.code()));
        let place = RegionId::parse(place)?;
        let sub = self.store().upsert_subscriber(ChannelKind::TelegramChat, &chat.to_string(), lang).await?.subscriber;
        self.store().add_place(sub.id, &place).await?;
        // The pipeline applies deltas before matching anything newer.
        let _ = self.daemon.deltas.send(IndexDelta::Added { subscriber: sub.id, places: vec![place] });
        Ok(sub.id)
    }

    /// Seconds since start, for the timeline.
    pub fn clock(&self) -> String {
        format!("{:>5.1}s", self.started.elapsed().as_secs_f64())
    }

    /// Waits for the next fan-out matching `pred`, skipping others.
    pub async fn next_fanout(&mut self, timeout: Duration, pred: impl Fn(&Fanout) -> bool) -> anyhow::Result<Fanout> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.fanouts.recv()).await {
                Ok(Ok(f)) if pred(&f) => return Ok(f),
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                Ok(Err(broadcast::error::RecvError::Closed)) => anyhow::bail!("the daemon stopped"),
                Err(_) => anyhow::bail!("no matching event within {timeout:?}"),
            }
        }
    }

    /// Fan-outs that happened and nobody waited for.
    pub fn drain_fanouts(&mut self) -> Vec<Fanout> {
        let mut out = Vec::new();
        while let Ok(f) = self.fanouts.try_recv() {
            out.push(f);
        }
        out
    }

    /// Waits until the outbox has nothing pending or in flight.
    pub async fn wait_drained(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.store().drained().await? {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!("outbox not drained within {timeout:?}: {:?}", self.store().counts().await?);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Points the feed simulator's ukrainealarm pushes at the daemon's webhook, so each
    /// change arrives at once (needs `Options::webhook`).
    pub fn webhook(&self) -> anyhow::Result<()> {
        let addr = self.daemon.web_addr.context("the daemon has no HTTP endpoint (Options::webhook)")?;
        self.feed.set_webhook(Some(crate::sim::feed::WebhookTarget {
            url: format!("http://{addr}/webhooks/ukrainealarm"),
            secret_header: crate::web::SECRET_HEADER.to_owned(),
            secret: WEBHOOK_SECRET.to_owned(),
        }));
        Ok(())
    }

    /// Requests the feed simulator has answered on the feeds the daemon polls.
    pub fn feed_requests(&self) -> u64 {
        self.sources.iter().map(|k| self.feed.requests_for(*k)).sum()
    }

    /// Waits until the feed simulator has answered `n` more requests than `since` (a
    /// [`Harness::feed_requests`] count).
    pub async fn wait_polls(&self, since: u64, n: u64, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.feed_requests() < since + n {
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!("the daemon stopped polling the feed");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Ok(())
    }

    /// Replaces a region file the way a careful operator's tool does (write, rename),
    /// so the watcher never reads half a file.
    pub fn write_region_file(&self, name: &str, text: &str) -> anyhow::Result<()> {
        self.write_config_file(&format!("regions/{name}"), text)
    }

    /// Replaces a file of the config directory (`sirena.toml`, `regions/x.toml`) the
    /// same way.
    pub fn write_config_file(&self, rel: &str, text: &str) -> anyhow::Result<()> {
        let path = self.config_dir.join(rel);
        let tmp = self.config_dir.join(format!(".{}.tmp", rel.replace('/', "_")));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }

    pub async fn shutdown(self) {
        self.daemon.shutdown().await;
        self.sims_cancel.cancel();
        self.sims.close();
        self.sims.wait().await;
    }
}

/// Writes the embedded config files under `dir`.
pub fn write_embedded_config(dir: &Path) -> anyhow::Result<()> {
    for (rel, text) in EMBEDDED_CONFIG {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The air raid over Luhansk oblast that has gone on since April 2022, so a real
/// snapshot is never empty.
pub fn luhansk() -> SimAlert {
    SimAlert {
        location_uid: 16,
        location_title: "Луганська область".into(),
        location_type: "oblast".into(),
        location_oblast: "Луганська область".into(),
        location_oblast_uid: 16,
        alert_type: "air_raid".into(),
        started_at: chrono::DateTime::from_timestamp(1_649_090_739, 0).unwrap_or_default(),
        katottg: Some("UA44000000000018893".into()),
        ..SimAlert::default()
    }
}

/// An air raid over Kharkiv oblast, as the feed lists it.
pub fn kharkiv_air_raid() -> SimAlert {
    SimAlert {
        location_uid: 22,
        location_title: "Харківська область".into(),
        location_type: "oblast".into(),
        location_oblast: "Харківська область".into(),
        location_oblast_uid: 22,
        alert_type: "air_raid".into(),
        started_at: chrono::Utc::now(),
        katottg: Some("UA63000000000041885".into()),
        ..SimAlert::default()
    }
}
