//! Config: the operator's files, read, validated as a whole, and turned into the
//! values the daemon runs on.
//!
//! ```text
//! config/sirena.toml          [[source]] feeds, channels, store, limits; secrets by env name only
//! config/regions/*.toml       [[region]] tables and [[evacuation]] orders
//! config/locales/{uk,en}/*.ftl
//! ```
//! Every table denies unknown fields. [`load`] reports every error it finds, each
//! with file, line and column, and returns nothing usable unless there are none: a
//! config that fails validation never replaces the running one.

pub mod codifier;
pub mod diff;
pub mod drills;
pub mod duration;
pub mod guard;
pub mod location;
pub mod log;
pub mod points;
pub mod secret;
pub mod sms;
pub mod sms_http;
mod sources;
mod spans;
pub mod warnings;

pub use sources::{
    AlertsInUaSettings, CapSettings, Common as SourceCommon, DEFAULT_MAX_BODY, SourceKind, SourceSettings,
    UkraineAlarmSettings,
};

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use serde::Deserialize;
use toml::Spanned;

use crate::alerts::Priority;
use crate::alerts::orders::{AssemblyPoint, Order, OrderStatus};
use crate::channels::{Address, ChannelKind};
use crate::dispatch::SupersededMode;
use crate::messages::{CatalogueError, CatalogueSource, Composer, Lang};
use crate::regions::{self, Level, Localized, Point, Region, RegionChannel, RegionId, RegionTree, TreeError};

/// One problem in one file, located as precisely as we can.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem concerns the file as a whole.
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.col, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// All the errors of one load, printed one per line.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A source file's text, kept to turn byte spans into line:column.
struct SourceText<'a> {
    path: &'a Path,
    text: &'a str,
}

impl SourceText<'_> {
    fn error(&self, span: Option<Range<usize>>, message: impl Into<String>) -> ConfigError {
        let (line, col) = match span {
            Some(s) => line_col(self.text, s.start),
            None => (0, 0),
        };
        ConfigError { file: self.path.to_owned(), line, col, message: message.into() }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

// ---------------------------------------------------------------- sirena.toml

/// `config/sirena.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub store: StoreSettings,
    /// The `[[source]]` tables (and a deprecated `[sources.alerts_in_ua]`), in file
    /// order, validated; read by `parse_settings` with their positions, not by serde.
    #[serde(skip)]
    pub sources: Vec<SourceSettings>,
    pub telegram: Option<TelegramSettings>,
    #[serde(default)]
    pub alerts: AlertSettings,
    #[serde(default)]
    pub dispatch: DispatchSettings,
    /// The daemon's own HTTP endpoint (feed webhooks); off when absent.
    pub http: Option<HttpSettings>,
    /// SMS gateways; SMS deliveries fail as unconfigured when absent.
    pub sms: Option<sms::SmsSettings>,
    /// `[log]`: the daemon's log format.
    #[serde(default)]
    pub log: log::LogSettings,
    #[serde(default)]
    pub reload: ReloadSettings,
    /// `[[drill]]`: scheduled test messages to residents who opted in.
    #[serde(default)]
    pub drill: Vec<drills::DrillSettings>,
    #[serde(default)]
    pub retention: drills::RetentionSettings,
    /// `[health]`: how long a refused credential is borne before the daemon exits.
    #[serde(default)]
    pub health: HealthSettings,
}

/// `[health]`: when a running daemon gives up on a credential the platform refuses.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSettings {
    /// How long a credential that worked may be refused (Telegram's 401, a feed's
    /// 401/403 past its throttling) before the daemon exits non-zero for its
    /// supervisor to restart it; a success in between starts the count again.
    /// Operators are told at the first refusal.
    #[serde(with = "crate::config::duration", default = "default_refused_for")]
    pub exit_after_refused: Duration,
}

fn default_refused_for() -> Duration {
    Duration::from_secs(15 * 60)
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings { exit_after_refused: default_refused_for() }
    }
}

/// `[reload]`: what a running daemon's reload may do that it otherwise refuses.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadSettings {
    /// Regions that may disappear from the region files although residents chose
    /// them as their place ([`guard`]).
    #[serde(default)]
    pub allow_removing: Vec<RegionId>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Address and port to listen on, e.g. `127.0.0.1:8640` (behind a reverse proxy
    /// that terminates TLS) or `0.0.0.0:8640`.
    pub listen: std::net::SocketAddr,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// SQLite file; a relative path is inside `$STATE_DIRECTORY` when that is set
    /// (systemd's `StateDirectory=sirena`: `/var/lib/sirena`), else relative to the
    /// config directory's parent, so `config/sirena.toml` with `path = "sirena.db"`
    /// puts the file beside `config/`. Exactly one of `path` and `url` is set.
    pub path: Option<PathBuf>,
    /// PostgreSQL instead of SQLite, for several nodes on one database:
    /// `postgres://user@host:5432/db` (or key=value pairs). Its password, if any, is read
    /// from the environment variable `password_env`, never written here.
    pub url: Option<String>,
    pub password_env: Option<String>,
    /// PostgreSQL only: the longest a standby waits before it takes over from a leader
    /// that died or lost the database (DESIGN §15). At least 2 s.
    #[serde(with = "crate::config::duration", default = "default_takeover")]
    pub takeover: Duration,
}

fn default_takeover() -> Duration {
    Duration::from_secs(10)
}

/// Where the store lives, as `[store]` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    /// The SQLite file, resolved as [`Config::store_path`] says.
    Sqlite(PathBuf),
    Postgres {
        url: String,
        password_env: Option<String>,
    },
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramSettings {
    #[serde(default = "default_telegram_url")]
    pub api_url: String,
    pub token_env: String,
    #[serde(default)]
    pub limits: TelegramLimits,
    /// Priority classes whose messages may use Telegram's paid broadcast
    /// (`allow_paid_broadcast`: up to `limits.paid_per_sec`, charged in Stars per
    /// message beyond the free rate). Must be the highest classes, e.g.
    /// `["mandatory_evacuation", "nuclear_chemical"]`. Empty: never paid.
    #[serde(default)]
    pub paid_broadcast: Vec<Priority>,
    /// One sendMessage's budget, separate from the long poll's.
    #[serde(with = "crate::config::duration", default = "default_send_timeout")]
    pub send_timeout: Duration,
    /// Telegram user ids allowed to use operator commands.
    #[serde(default)]
    pub operators: Vec<i64>,
    /// How long one getUpdates long poll waits.
    #[serde(with = "crate::config::duration", default = "default_long_poll")]
    pub long_poll: Duration,
    /// A shared location means the nearest surveyed settlement this close (km); farther
    /// away, the region whose boundary holds it (`sirena regions import-geo`).
    #[serde(default = "default_location_radius")]
    pub location_radius_km: f64,
    /// How updates arrive: `polling` (getUpdates, the default) or `webhook`
    /// (Telegram POSTs them to `webhook_url`, served on `[http] listen`).
    #[serde(default)]
    pub mode: TelegramMode,
    /// The public https URL registered with setWebhook; its path starts with
    /// `/telegram/`, which the daemon serves (a TLS proxy forwards it unchanged).
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// The environment variable holding the webhook's secret token, which Telegram
    /// sends in `X-Telegram-Bot-Api-Secret-Token` (1–256 of `A-Za-z0-9_-`).
    #[serde(default)]
    pub webhook_secret_env: Option<String>,
    /// Longest one update may take to be decided; past it the resident is told of
    /// an error, and the chat's next update goes on.
    #[serde(with = "crate::config::duration", default = "default_handle_timeout")]
    pub handle_timeout: Duration,
}

/// How the bot receives updates.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TelegramMode {
    #[default]
    Polling,
    Webhook,
}

fn default_location_radius() -> f64 {
    crate::regions::geo::DEFAULT_RADIUS_KM
}

fn default_handle_timeout() -> Duration {
    Duration::from_secs(15)
}

fn default_telegram_url() -> String {
    "https://api.telegram.org".to_owned()
}
fn default_long_poll() -> Duration {
    Duration::from_secs(30)
}
fn default_send_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Telegram's limits per bot, enforced by sirena before each request.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TelegramLimits {
    /// Messages per second across all chats (Telegram: 30).
    pub global_per_sec: u32,
    /// With paid broadcast, for the classes allowed it (Telegram: up to 1000).
    pub paid_per_sec: u32,
    pub per_chat_per_sec: u32,
    /// Groups and channels.
    pub group_per_min: u32,
    /// Added to every window against clock jitter between sirena and Telegram.
    #[serde(with = "crate::config::duration")]
    pub margin: Duration,
}

impl Default for TelegramLimits {
    fn default() -> Self {
        TelegramLimits {
            global_per_sec: 30,
            paid_per_sec: 1000,
            per_chat_per_sec: 1,
            group_per_min: 20,
            margin: Duration::from_millis(5),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    /// A source silent for longer than this neither starts nor ends alerts.
    #[serde(with = "crate::config::duration", default = "default_stale_after")]
    pub stale_after: Duration,
    /// How long a source must keep giving an implausible snapshot — empty after a
    /// non-empty one, or losing long-standing alerts with most others — without
    /// failing in between, before sirena believes it (unless another healthy source
    /// confirms sooner).
    #[serde(with = "crate::config::duration", default = "default_hold_implausible")]
    pub hold_implausible: Duration,
}

fn default_stale_after() -> Duration {
    Duration::from_secs(300)
}
fn default_hold_implausible() -> Duration {
    Duration::from_secs(300)
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings { stale_after: default_stale_after(), hold_implausible: default_hold_implausible() }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchSettings {
    /// Requests to each channel in flight at once.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// First retry delay after a network error or 5xx; doubles up to `retry_max`.
    #[serde(with = "crate::config::duration", default = "default_retry_base")]
    pub retry_base: Duration,
    #[serde(with = "crate::config::duration", default = "default_retry_max")]
    pub retry_max: Duration,
    /// How long a claimed delivery stays reserved for the node that claimed it without
    /// a renewal; after a crash its in-flight deliveries are sent again this long later.
    #[serde(with = "crate::config::duration", default = "default_lease")]
    pub lease: Duration,
    /// A start that ended before it reached the reader: one line, or nothing.
    #[serde(default = "default_superseded")]
    pub superseded: SupersededMode,
    #[serde(default)]
    pub deadlines: Deadlines,
}

fn default_in_flight() -> usize {
    16
}
fn default_retry_base() -> Duration {
    Duration::from_secs(1)
}
fn default_retry_max() -> Duration {
    Duration::from_secs(300)
}
fn default_lease() -> Duration {
    Duration::from_secs(30)
}
fn default_superseded() -> SupersededMode {
    SupersededMode::Line
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            max_in_flight: default_in_flight(),
            retry_base: default_retry_base(),
            retry_max: default_retry_max(),
            lease: default_lease(),
            superseded: default_superseded(),
            deadlines: Deadlines::default(),
        }
    }
}

/// How long after it was queued a delivery of each class is still worth sending;
/// `"none"` keeps it until its subject ends (an evacuation order holds until lifted).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Deadlines {
    #[serde(with = "deadline")]
    pub mandatory_evacuation: Option<Duration>,
    #[serde(with = "deadline")]
    pub nuclear_chemical: Option<Duration>,
    #[serde(with = "deadline")]
    pub local_threat: Option<Duration>,
    #[serde(with = "deadline")]
    pub other_start: Option<Duration>,
    #[serde(with = "deadline")]
    pub update: Option<Duration>,
    #[serde(with = "deadline")]
    pub end: Option<Duration>,
    #[serde(with = "deadline")]
    pub info: Option<Duration>,
}

impl Default for Deadlines {
    fn default() -> Self {
        let m = |minutes: u64| Some(Duration::from_secs(minutes * 60));
        Deadlines {
            mandatory_evacuation: None,
            nuclear_chemical: m(120),
            // An air-raid start 40 minutes late is noise.
            local_threat: m(30),
            other_start: m(30),
            update: m(180),
            end: m(120),
            info: m(360),
        }
    }
}

impl Deadlines {
    pub fn of(&self, p: Priority) -> Option<Duration> {
        match p {
            Priority::MandatoryEvacuation => self.mandatory_evacuation,
            Priority::NuclearChemical => self.nuclear_chemical,
            Priority::LocalThreat => self.local_threat,
            Priority::OtherStart => self.other_start,
            Priority::Update => self.update,
            Priority::End => self.end,
            Priority::Info => self.info,
        }
    }
}

/// `"30m"` or `"none"`.
mod deadline {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim() == "none" {
            return Ok(None);
        }
        super::duration::parse(&s).map(Some).map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------- regions/*.toml

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionFile {
    #[serde(default)]
    region: Vec<Spanned<RegionEntry>>,
    #[serde(default)]
    evacuation: Vec<Spanned<OrderEntry>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionEntry {
    id: Spanned<String>,
    parent: Option<Spanned<String>>,
    /// Level and name may be left out of a region the generated codifier has: the
    /// entry then overrides only what it gives.
    level: Option<Level>,
    name: Option<Localized>,
    #[serde(default)]
    aliases: Vec<String>,
    feed_id: Option<u32>,
    point: Option<Spanned<[f64; 2]>>,
    #[serde(default)]
    approx: bool,
    /// The region's Telegram channel (`@username` or `-100…`); the bot must be an admin.
    channel: Option<Spanned<String>>,
    /// The language of the channel's posts; Ukrainian by default.
    channel_lang: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderEntry {
    id: Spanned<String>,
    status: OrderStatus,
    targets: Vec<Spanned<String>>,
    issued_at: Spanned<toml::value::Datetime>,
    expires_at: Option<Spanned<toml::value::Datetime>>,
    destination: Option<Localized>,
    transport: Option<Localized>,
    hotline: Option<String>,
    who: Option<Localized>,
    text: Option<Localized>,
    #[serde(default)]
    assembly_points: Vec<Spanned<AssemblyPointEntry>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssemblyPointEntry {
    name: Localized,
    address: Option<Localized>,
    place: Option<Spanned<String>>,
    at: Option<Spanned<[f64; 2]>>,
    #[serde(default)]
    times: Vec<Spanned<String>>,
}

// ---------------------------------------------------------------- the whole config

/// A validated config, ready to run on. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Config {
    pub dir: PathBuf,
    pub settings: Settings,
    pub tree: Arc<RegionTree>,
    pub orders: Vec<Order>,
    pub composer: Arc<Composer>,
    /// Where each region and order was written, for errors about a later change.
    pub origins: Arc<ConfigOrigins>,
    /// What the loader filled in that the files do not say (an assembly point's `at`
    /// from its place), one line each, for `check-config` to tell the operator.
    pub notes: Vec<String>,
}

/// File and line of each region (by id) and order (by id).
#[derive(Clone, Debug, Default)]
pub struct ConfigOrigins {
    pub regions: HashMap<String, (PathBuf, usize)>,
    pub orders: HashMap<String, (PathBuf, usize)>,
}

fn strip_col(origins: Origins) -> HashMap<String, (PathBuf, usize)> {
    origins.into_iter().map(|(id, (file, line, _))| (id, (file, line))).collect()
}

impl Config {
    /// Where the store lives: validation made sure exactly one of `path` and `url`
    /// is set.
    pub fn store_location(&self) -> StoreLocation {
        let store = &self.settings.store;
        match &store.url {
            Some(url) => StoreLocation::Postgres { url: url.clone(), password_env: store.password_env.clone() },
            None => {
                let state = std::env::var_os("STATE_DIRECTORY");
                StoreLocation::Sqlite(self.store_path_in(state.as_deref().map(Path::new)))
            }
        }
    }

    /// The SQLite file: an absolute `[store] path` as written; a relative one inside
    /// `$STATE_DIRECTORY` when that is set (systemd's `StateDirectory=`, the Docker
    /// image), else beside the config directory. `None` when the store is PostgreSQL.
    pub fn store_path(&self) -> Option<PathBuf> {
        match self.store_location() {
            StoreLocation::Sqlite(path) => Some(path),
            StoreLocation::Postgres { .. } => None,
        }
    }

    /// The SQLite path [`Config::store_path`] gives with the state directory given;
    /// systemd may list several, colon-separated, and the first is the store's.
    pub fn store_path_in(&self, state_directory: Option<&Path>) -> PathBuf {
        let path = self.settings.store.path.clone().unwrap_or_else(|| PathBuf::from("sirena.db"));
        if path.is_absolute() {
            return path;
        }
        let first = |s: &Path| match s.to_str() {
            Some(list) => PathBuf::from(list.split(':').next().unwrap_or_default()),
            None => s.to_owned(),
        };
        let state = state_directory.map(first).filter(|s| !s.as_os_str().is_empty());
        match state {
            Some(dir) => dir.join(path),
            None => self.dir.parent().unwrap_or(Path::new(".")).join(path),
        }
    }
}

/// Reads and validates a config directory, reporting every error at once.
pub fn load(dir: &Path) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();

    let settings_path = dir.join("sirena.toml");
    let mut settings_text = String::new();
    let settings = match std::fs::read_to_string(&settings_path) {
        Ok(text) => {
            let s = parse_settings(&settings_path, &text, &mut errors);
            settings_text = text;
            s
        }
        Err(e) => {
            errors.push(file_error(&settings_path, format!("cannot read: {e}")));
            None
        }
    };

    let (tree, orders, order_origin, region_origin, notes) = load_regions(&dir.join("regions"), &mut errors);
    if let (Some(s), Some(t)) = (&settings, &tree) {
        let src = SourceText { path: &settings_path, text: &settings_text };
        drills::check_places(&src, &s.drill, t, &mut errors);
    }
    let composer = load_locales(&dir.join("locales"), &mut errors);

    match (settings, tree, composer) {
        (Some(settings), Some(mut tree), Some(composer)) if errors.is_empty() => {
            let radius = settings.telegram.as_ref().map_or(regions::geo::DEFAULT_RADIUS_KM, |t| t.location_radius_km);
            if !(radius.is_finite() && radius > 0.0) {
                errors.push(file_error(&settings_path, "[telegram] location_radius_km must be a positive number"));
                return Err(ConfigErrors(errors));
            }
            if radius != regions::geo::DEFAULT_RADIUS_KM {
                let boundaries = tree.locator().boundaries().clone();
                tree.set_geo(boundaries, radius);
            }
            let composer = match &settings.sms {
                Some(sms) => composer.with_sms_max_parts(sms.max_parts),
                None => composer,
            };
            let sms = settings.sms.as_ref().is_some_and(|s| !s.gateways.is_empty());
            check_orders_fit(&orders, &order_origin, &composer, &tree, sms, &mut errors);
            if !errors.is_empty() {
                return Err(ConfigErrors(errors));
            }
            let origins =
                Arc::new(ConfigOrigins { regions: strip_col(region_origin), orders: strip_col(order_origin) });
            Ok(Config {
                dir: dir.to_owned(),
                settings,
                tree: Arc::new(tree),
                orders,
                composer: Arc::new(composer),
                origins,
                notes,
            })
        }
        _ => Err(ConfigErrors(errors)),
    }
}

fn file_error(path: &Path, message: impl Into<String>) -> ConfigError {
    ConfigError { file: path.to_owned(), line: 0, col: 0, message: message.into() }
}

fn parse_settings(path: &Path, text: &str, errors: &mut Vec<ConfigError>) -> Option<Settings> {
    let src = SourceText { path, text };
    let mut root = match toml::de::DeTable::parse(text) {
        Ok(r) => r,
        Err(e) => {
            errors.push(src.error(e.span(), spans::with_suggestion(e.message().trim())));
            return None;
        }
    };
    let spans = spans::KeySpans::of(root.get_ref());
    let sources = sources::take(root.get_mut(), &src, errors);
    let mut settings = match Settings::deserialize(toml::de::Deserializer::from(root)) {
        Ok(s) => s,
        Err(e) => {
            errors.push(src.error(e.span(), spans::with_suggestion(e.message().trim())));
            return None;
        }
    };
    sources::check(&src, &sources, settings.http.is_some(), errors);
    settings.sources = sources.into_iter().map(|(s, _)| s).collect();
    // Semantic checks. The parsed struct has no spans; `spans` knows where each key is.
    let at = |path: &str| spans.at(path);
    if let Some(sms) = &settings.sms {
        if !(1..=10).contains(&sms.max_parts) {
            errors.push(src.error(at("sms.max_parts"), "max_parts must be 1 to 10"));
        }
        let mut names = std::collections::HashSet::new();
        for (i, g) in sms.gateways.iter().enumerate() {
            let key_of = |k: &str| at(&format!("sms.gateway.{i}.{k}"));
            if !names.insert(g.name()) {
                errors.push(src.error(key_of("name"), format!("SMS gateway name `{}` is used twice", g.name())));
            }
            if let sms::GatewaySettings::Http(h) = g {
                for (key, message) in sms_http::check(h) {
                    errors.push(src.error(key_of(key), message));
                }
            } else {
                check_url(&src, g.base_url(), key_of("base_url"), errors);
            }
            if g.per_sec() == 0 {
                errors.push(src.error(key_of("per_sec"), "per_sec must be at least 1"));
            }
            if let sms::GatewaySettings::Turbosms { requests_per_sec, batch, .. } = g {
                if *requests_per_sec == 0 {
                    errors.push(src.error(key_of("requests_per_sec"), "requests_per_sec must be at least 1"));
                }
                if !(1..=sms::MAX_BATCH).contains(batch) {
                    errors.push(src.error(key_of("batch"), format!("batch must be 1 to {}", sms::MAX_BATCH)));
                }
            }
            if let Some(var) = g.report_secret_env() {
                if settings.http.is_none() {
                    errors.push(src.error(
                        key_of("report_secret_env"),
                        "delivery reports arrive on the daemon's HTTP endpoint: add [http] listen = \"…\"",
                    ));
                }
                if var.trim().is_empty() {
                    errors.push(
                        src.error(key_of("report_secret_env"), "report_secret_env must name an environment variable"),
                    );
                }
            }
            if let sms::GatewaySettings::Twilio { report_url: Some(url), report_secret_env, .. } = g {
                check_url(&src, url, key_of("report_url"), errors);
                if report_secret_env.is_none() {
                    errors.push(src.error(
                        key_of("report_url"),
                        "report_url needs report_secret_env: reports without a secret are refused",
                    ));
                }
            }
            if let sms::GatewaySettings::Turbosms { sender, .. } = g {
                // Alpha sender names are registered with the operators: 11 characters.
                if sender.is_empty() || sender.chars().count() > 11 {
                    errors.push(src.error(key_of("sender"), format!("sender `{sender}` must be 1 to 11 characters")));
                }
            }
        }
    }
    check_store(&src, &spans, &settings.store, errors);
    drills::check(&src, &settings.drill, errors);
    if settings.retention.delivered_days == Some(0) {
        errors.push(src.error(at("retention.delivered_days"), "delivered_days must be at least 1"));
    }
    if settings.retention.help_requests_days == Some(0) {
        errors.push(src.error(at("retention.help_requests_days"), "help_requests_days must be at least 1"));
    }
    if let Some(t) = &settings.telegram {
        check_url(&src, &t.api_url, at("telegram.api_url"), errors);
        let l = &t.limits;
        if l.global_per_sec == 0 || l.per_chat_per_sec == 0 || l.group_per_min == 0 || l.paid_per_sec == 0 {
            errors.push(src.error(at("telegram.limits"), "telegram limits must all be at least 1"));
        }
        // Paid broadcast is a way for the most urgent classes to overtake everything;
        // allowing it to a class but not to a more urgent one would invert priorities.
        let mut paid = t.paid_broadcast.clone();
        paid.sort();
        paid.dedup();
        if let Some(gap) = Priority::ALL.iter().take(paid.len()).zip(&paid).find(|(want, got)| want != got) {
            errors.push(src.error(
                at("telegram.paid_broadcast"),
                format!(
                    "paid_broadcast must list the most urgent classes first: `{}` is allowed but `{}` is not",
                    gap.1.as_str(),
                    gap.0.as_str()
                ),
            ));
        }
        if t.send_timeout.is_zero() {
            errors.push(src.error(at("telegram.send_timeout"), "send_timeout must be more than zero"));
        }
        if t.handle_timeout.is_zero() {
            errors.push(src.error(at("telegram.handle_timeout"), "handle_timeout must be more than zero"));
        }
        check_telegram_webhook(&src, &spans, t, settings.http.is_some(), errors);
    }
    if settings.dispatch.max_in_flight == 0 {
        errors.push(src.error(at("dispatch.max_in_flight"), "max_in_flight must be at least 1"));
    }
    if settings.dispatch.lease < Duration::from_secs(1) {
        errors.push(src.error(at("dispatch.lease"), "lease must be at least 1s"));
    }
    if let Some(t) = &settings.telegram
        && settings.dispatch.lease <= t.send_timeout
    {
        errors.push(src.error(at("dispatch.lease"), "lease must be longer than telegram send_timeout"));
    }
    for p in Priority::ALL {
        if settings.dispatch.deadlines.of(p).is_some_and(|d| d.is_zero()) {
            errors.push(src.error(
                at(&format!("dispatch.deadlines.{}", p.as_str())),
                format!("deadline of {} must be more than zero", p.as_str()),
            ));
        }
    }
    Some(settings)
}

/// The `<name>` of a webhook URL's `/telegram/<name>` path: what the daemon serves.
pub fn webhook_hook(url: &reqwest::Url) -> Option<&str> {
    let hook = url.path().strip_prefix("/telegram/")?;
    (!hook.is_empty() && !hook.contains('/')).then_some(hook)
}

/// Webhook mode needs a public https URL under `/telegram/`, a secret and `[http]`;
/// each mistake is reported at its key (or at `mode` for a missing one).
fn check_telegram_webhook(
    src: &SourceText<'_>,
    spans: &spans::KeySpans,
    t: &TelegramSettings,
    http: bool,
    errors: &mut Vec<ConfigError>,
) {
    let at = |key: &str| spans.at(&format!("telegram.{key}"));
    if t.mode != TelegramMode::Webhook {
        return;
    }
    match &t.webhook_url {
        None => errors.push(src.error(at("mode"), "mode = \"webhook\" needs webhook_url (the public https URL)")),
        Some(url) => match reqwest::Url::parse(url) {
            Ok(u) if u.scheme() != "https" => errors.push(
                src.error(at("webhook_url"), format!("webhook_url `{url}` must be https (Telegram calls only https)")),
            ),
            Ok(u) if webhook_hook(&u).is_none() => errors.push(src.error(
                at("webhook_url"),
                format!("webhook_url `{url}`: its path must be /telegram/<name>, e.g. /telegram/bot"),
            )),
            Ok(_) => {}
            Err(e) => errors.push(src.error(at("webhook_url"), format!("webhook_url `{url}` is not a URL: {e}"))),
        },
    }
    match &t.webhook_secret_env {
        None => errors
            .push(src.error(at("mode"), "mode = \"webhook\" needs webhook_secret_env (the secret token's variable)")),
        Some(var) if var.trim().is_empty() => {
            errors.push(src.error(at("webhook_secret_env"), "webhook_secret_env must name an environment variable"))
        }
        Some(_) => {}
    }
    if !http {
        errors.push(src.error(
            at("mode"),
            "the Telegram webhook is served on the daemon's HTTP endpoint: add [http] listen = \"…\"",
        ));
    }
}

fn check_store(src: &SourceText<'_>, spans: &spans::KeySpans, store: &StoreSettings, errors: &mut Vec<ConfigError>) {
    let store_key = |key: &str| spans.at(&format!("store.{key}"));
    match (&store.path, &store.url) {
        (Some(_), Some(_)) => {
            errors.push(src.error(store_key("url"), "[store] sets both path (SQLite) and url (PostgreSQL): set one"))
        }
        (None, None) => errors.push(src.error(spans.at("store"), "[store] needs path (SQLite) or url (PostgreSQL)")),
        _ => {}
    }
    if let Some(url) = &store.url {
        let shown = crate::store::postgres::redact_url(url);
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://") || url.contains("host=")) {
            errors.push(src.error(store_key("url"), format!("`{shown}` is not a postgres:// URL")));
        } else if let Err(e) = crate::store::postgres::parse_url(url) {
            errors.push(src.error(store_key("url"), format!("`{shown}`: {e}")));
        }
    } else if store.password_env.is_some() {
        errors.push(src.error(store_key("password_env"), "password_env is for a PostgreSQL url"));
    }
    if store.takeover < Duration::from_secs(2) {
        errors.push(src.error(store_key("takeover"), "takeover must be at least 2s"));
    }
}

fn check_url(src: &SourceText<'_>, url: &str, span: Option<Range<usize>>, errors: &mut Vec<ConfigError>) {
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
        Ok(u) => errors.push(src.error(span, format!("`{url}`: scheme {} is not http or https", u.scheme()))),
        Err(e) => errors.push(src.error(span, format!("`{url}` is not a URL: {e}"))),
    }
}

/// Sorted `*.<ext>` files of a directory. Hidden files are editors' (`.#kharkiv.toml`,
/// `.kharkiv.toml.swp`) and backups end otherwise (`kharkiv.toml~`): neither is read.
fn files_with_ext(dir: &Path, ext: &str) -> std::io::Result<Vec<PathBuf>> {
    let hidden = |p: &Path| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == ext) && p.is_file() && !hidden(p))
        .collect();
    files.sort();
    Ok(files)
}

/// Where each region and order was defined, to locate errors found across files.
type Origins = HashMap<String, (PathBuf, usize, usize)>;

/// Every order as an SMS in every language must fit `[sms] max_parts` once shortened
/// (the renderer drops details, never the title, the place or the hotline), and as a
/// Telegram message or channel post its 4096 characters whole (the renderer would cut
/// its last lines): an order that cannot is the operator's to shorten, found now
/// rather than when it is sent.
fn check_orders_fit(
    orders: &[Order],
    origin: &Origins,
    composer: &Composer,
    tree: &RegionTree,
    sms: bool,
    errors: &mut Vec<ConfigError>,
) {
    use crate::alerts::{AlertKind, Event, EventDetail, EventId, Priority, Transition};
    use crate::messages::{Format, Part};
    for order in orders {
        let event = Event {
            id: EventId(format!("evacuation:{}:check", order.id)),
            kind: AlertKind::Evacuation,
            transition: Transition::Started,
            revision: 1,
            targets: order.targets.clone(),
            reach: Default::default(),
            at: order.issued_at.to_utc(),
            priority: Priority::MandatoryEvacuation,
            detail: EventDetail::Order { order: Box::new(order.clone()), changes: Vec::new() },
        };
        for lang in crate::messages::Lang::ALL {
            for format in [Format::TelegramHtml, Format::ChannelPost] {
                let text = composer.render(&[Part::Event { event: &event, as_new: true }], lang, format, tree).text;
                if text.ends_with("\n…") {
                    let (file, line, col) = origin.get(&order.id).cloned().unwrap_or_default();
                    let kept = text.lines().count().saturating_sub(1);
                    errors.push(ConfigError {
                        file,
                        line,
                        col,
                        message: format!(
                            "order `{}` in {} is longer than a Telegram message ({} characters): only its first {kept} lines would be sent; shorten its text",
                            order.id,
                            lang.code(),
                            crate::messages::TELEGRAM_MAX_UTF16
                        ),
                    });
                    break;
                }
            }
            if !sms {
                continue;
            }
            let text = composer.render(&[Part::Event { event: &event, as_new: true }], lang, Format::Sms, tree).text;
            let parts = crate::messages::sms::segments(&text).parts;
            if parts > composer.sms_max_parts() {
                let (file, line, col) = origin.get(&order.id).cloned().unwrap_or_default();
                errors.push(ConfigError {
                    file,
                    line,
                    col,
                    message: format!(
                        "order `{}` as an SMS in {} takes {parts} parts even shortened, more than [sms] max_parts = {}: shorten its place names, destination or hotline ({text})",
                        order.id,
                        lang.code(),
                        composer.sms_max_parts()
                    ),
                });
            }
        }
    }
}

/// What [`load_regions`] returns.
type LoadedRegions = (Option<RegionTree>, Vec<Order>, Origins, Origins, Vec<String>);

/// The tree, the orders, and where each order and region was written.
/// And the notes on what was filled in (an assembly point's `at`).
fn load_regions(dir: &Path, errors: &mut Vec<ConfigError>) -> LoadedRegions {
    let files = match files_with_ext(dir, "toml") {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => {
            errors.push(file_error(dir, "no region files (*.toml) found"));
            return (None, Vec::new(), Origins::new(), Origins::new(), Vec::new());
        }
        Err(e) => {
            errors.push(file_error(dir, format!("cannot read directory: {e}")));
            return (None, Vec::new(), Origins::new(), Origins::new(), Vec::new());
        }
    };
    let before = errors.len();
    let mut written = Vec::new();
    let mut region_origin: Origins = HashMap::new();
    // Each file's text is kept once; orders refer to it by index for error positions.
    let mut texts: Vec<(PathBuf, String)> = Vec::new();
    let mut parsed_orders: Vec<(usize, OrderEntry)> = Vec::new();
    // The regions each file defines, to hold its orders to its oblast.
    let mut file_regions: Vec<Vec<RegionId>> = Vec::new();
    // Each hand-written region point (region, file index, span, [lat, lon]), to hold
    // it to its oblast's boundary once the tree is built.
    let mut points_written = Vec::new();
    for path in &files {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(file_error(path, format!("cannot read: {e}")));
                continue;
            }
        };
        let src = SourceText { path, text: &text };
        let mut defined_here = Vec::new();
        let file: RegionFile = match toml::from_str(&text) {
            Ok(f) => f,
            Err(e) => {
                errors.push(src.error(e.span(), spans::with_suggestion(e.message().trim())));
                continue;
            }
        };
        for entry in file.region {
            let span = entry.span();
            let entry = entry.into_inner();
            let point = entry.point.as_ref().map(|p| (p.span(), *p.get_ref()));
            if let Some(r) = region_from_entry(&src, entry, errors) {
                if let Some((point_span, at)) = point {
                    points_written.push((r.id.clone(), texts.len(), point_span, at));
                }
                let (line, col) = line_col(&text, span.start);
                if let Some((f, l, _)) = region_origin.get(r.id.as_str()) {
                    errors.push(
                        src.error(Some(span), format!("region {} is already defined at {}:{}", r.id, f.display(), l)),
                    );
                    continue;
                }
                region_origin.insert(r.id.to_string(), (path.clone(), line, col));
                defined_here.push(r.id.clone());
                written.push(r);
            }
        }
        let file_index = texts.len();
        parsed_orders.extend(file.evacuation.into_iter().map(|o| (file_index, o.into_inner())));
        texts.push((path.clone(), text));
        file_regions.push(defined_here);
    }
    let regions = codifier::merge(dir, written, &mut region_origin, errors);
    // Orders are still checked when the regions are broken, so one load reports both;
    // only the checks against the tree are skipped then.
    let mut tree = if errors.len() > before { None } else { build_tree(dir, regions, &region_origin, errors) };
    if let Some(tree) = tree.as_mut() {
        load_boundaries(dir, tree, errors);
        for (id, file_index, span, [lat, lon]) in points_written {
            let (path, text) = &texts[file_index];
            let src = SourceText { path, text };
            // Outside Ukraine was told already (region_from_entry); this is the oblast.
            // An oblast's own point is its seat, which may lie outside it (Kyiv Oblast's
            // is in Kyiv): the box holds it.
            if points::misplaced(lat, lon, None).is_none()
                && tree.get(&id).is_some_and(|r| r.level != regions::Level::Oblast)
                && let Some((name, polys)) = points::oblast_boundary(tree, &id)
                && let Some(why) = points::misplaced(lat, lon, Some((&name, polys)))
            {
                errors.push(src.error(Some(span), format!("region {id}: point {why}")));
            }
        }
    }
    let mut notes = Vec::new();
    let mut orders = Vec::new();
    let mut order_origin: Origins = HashMap::new();
    for (file_index, entry) in parsed_orders {
        let (path, text) = &texts[file_index];
        let src = SourceText { path, text };
        let span = entry.id.span();
        let (line, col) = line_col(text, span.start);
        let id = entry.id.get_ref().trim().to_owned();
        if let Some((f, l, _)) = order_origin.get(&id) {
            errors.push(
                src.error(Some(span), format!("evacuation order id `{id}` is already used at {}:{}", f.display(), l)),
            );
            continue;
        }
        order_origin.insert(id, (path.clone(), line, col));
        let oblast = tree.as_ref().and_then(|t| only_oblast(t, &file_regions[file_index]));
        if let Some(o) = order_from_entry(&src, entry, tree.as_ref(), oblast.as_ref(), errors, &mut notes) {
            orders.push(o);
        }
    }
    (tree, orders, order_origin, region_origin, notes)
}

/// The one oblast all of a file's regions lie in, if they do: `kharkiv.toml`'s orders
/// belong to Kharkiv oblast. A file of several oblasts' regions (or none) holds its
/// orders to nothing.
fn only_oblast(tree: &RegionTree, regions: &[RegionId]) -> Option<RegionId> {
    let mut tops = regions.iter().filter_map(|id| tree.ancestors(id).last());
    let first = tops.next()?;
    tops.all(|t| t == first).then(|| first.clone())
}

/// Reads `regions/boundaries.generated.tsv` (`sirena regions import-geo`) into the
/// tree's locator, if the file is there; a boundary of a region the tree does not have
/// is an error.
fn load_boundaries(dir: &Path, tree: &mut RegionTree, errors: &mut Vec<ConfigError>) {
    let path = dir.join(regions::geo::FILE_NAME);
    if !path.is_file() {
        return;
    }
    let boundaries = match std::fs::read_to_string(&path) {
        Ok(text) => match regions::geo::read(&text) {
            Ok(b) => b,
            Err(e) => {
                let line = match &e {
                    regions::geo::GeoError::Line { line, .. } => *line,
                    _ => 0,
                };
                errors.push(ConfigError { file: path.clone(), line, col: 0, message: e.to_string() });
                return;
            }
        },
        Err(e) => {
            errors.push(file_error(&path, format!("cannot read: {e}")));
            return;
        }
    };
    let unknown: Vec<&str> = boundaries.regions.keys().filter(|id| !tree.contains(id)).map(|id| id.as_str()).collect();
    if !unknown.is_empty() {
        errors.push(file_error(&path, format!("boundaries of regions the tree does not have: {}", unknown.join(", "))));
        return;
    }
    tree.set_geo(boundaries, regions::geo::DEFAULT_RADIUS_KM);
}

fn build_tree(
    dir: &Path,
    regions: Vec<Region>,
    region_origin: &Origins,
    errors: &mut Vec<ConfigError>,
) -> Option<RegionTree> {
    match RegionTree::build(regions) {
        Ok(t) => Some(t),
        Err(tree_errors) => {
            for e in tree_errors {
                let id = match &e {
                    TreeError::Duplicate(id) | TreeError::NeedsParent(id, _) | TreeError::Cycle(id) => id,
                    TreeError::MissingParent { id, .. } => id,
                    TreeError::DuplicateFeedId { second, .. } => second,
                };
                let (file, line, col) =
                    region_origin.get(id.as_str()).cloned().unwrap_or_else(|| (dir.to_owned(), 0, 0));
                errors.push(ConfigError { file, line, col, message: e.to_string() });
            }
            None
        }
    }
}

fn region_from_entry(src: &SourceText<'_>, e: RegionEntry, errors: &mut Vec<ConfigError>) -> Option<codifier::Written> {
    let id = parse_region_id(src, &e.id, errors)?;
    let parent = match &e.parent {
        Some(p) => Some(parse_region_id(src, p, errors)?),
        None => None,
    };
    let point = match e.point {
        Some(p) => {
            let pt = parse_point(src, &p, errors)?;
            if let Some(why) = points::misplaced(pt.lat, pt.lon, None) {
                errors.push(src.error(Some(p.span()), format!("region {id}: point {why}")));
            }
            Some(pt)
        }
        None => None,
    };
    if e.name.as_ref().is_some_and(|n| n.uk.trim().is_empty()) {
        errors.push(src.error(Some(e.id.span()), "name.uk must not be empty"));
    }
    let channel = match &e.channel {
        Some(c) => match Address::parse(ChannelKind::TelegramChannel, c.get_ref()) {
            Ok(address) => {
                let lang = match &e.channel_lang {
                    None => Lang::Uk,
                    Some(l) => Lang::parse(l.get_ref()).unwrap_or_else(|| {
                        errors
                            .push(src.error(Some(l.span()), format!("channel_lang `{}` is not uk or en", l.get_ref())));
                        Lang::Uk
                    }),
                };
                Some(RegionChannel { address: address.to_string(), lang })
            }
            Err(err) => {
                errors.push(src.error(Some(c.span()), err.to_string()));
                None
            }
        },
        None => {
            if let Some(l) = &e.channel_lang {
                errors.push(src.error(Some(l.span()), "channel_lang without a channel"));
            }
            None
        }
    };
    let (line, col) = line_col(src.text, e.id.span().start);
    Some(codifier::Written {
        id,
        parent,
        level: e.level,
        name: e.name,
        aliases: e.aliases,
        point,
        approx: e.approx,
        feed_id: e.feed_id,
        channel,
        at: (src.path.to_owned(), line, col),
    })
}

fn parse_region_id(src: &SourceText<'_>, s: &Spanned<String>, errors: &mut Vec<ConfigError>) -> Option<RegionId> {
    match RegionId::parse(s.get_ref()) {
        Ok(id) => Some(id),
        Err(e) => {
            errors.push(src.error(Some(s.span()), e.to_string()));
            None
        }
    }
}

fn parse_point(src: &SourceText<'_>, p: &Spanned<[f64; 2]>, errors: &mut Vec<ConfigError>) -> Option<Point> {
    let [lat, lon] = *p.get_ref();
    if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) {
        Some(Point { lat, lon })
    } else {
        errors.push(src.error(Some(p.span()), format!("[{lat}, {lon}] is not a [latitude, longitude] pair")));
        None
    }
}

fn parse_datetime(
    src: &SourceText<'_>,
    d: &Spanned<toml::value::Datetime>,
    errors: &mut Vec<ConfigError>,
) -> Option<DateTime<FixedOffset>> {
    let text = d.get_ref().to_string();
    match DateTime::parse_from_rfc3339(&text) {
        Ok(t) => Some(t),
        Err(_) => {
            errors.push(src.error(
                Some(d.span()),
                format!("`{text}` needs a date, a time and a UTC offset, e.g. 2023-11-06T08:00:00+02:00"),
            ));
            None
        }
    }
}

fn order_from_entry(
    src: &SourceText<'_>,
    e: OrderEntry,
    tree: Option<&RegionTree>,
    oblast: Option<&RegionId>,
    errors: &mut Vec<ConfigError>,
    notes: &mut Vec<String>,
) -> Option<Order> {
    // Without a tree (the regions are broken) region references cannot be checked;
    // they count as defined so only the other errors are reported.
    let defined = |id: &RegionId| tree.is_none_or(|t| t.contains(id));
    let before = errors.len();
    let id = e.id.get_ref().trim().to_owned();
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        errors.push(src.error(
            Some(e.id.span()),
            "order id must be 1–64 characters of a-z, 0-9, `-` and `_` (it appears in event ids)",
        ));
    }
    if e.targets.is_empty() {
        errors.push(src.error(Some(e.id.span()), format!("order `{id}` has no targets")));
    }
    let mut targets = Vec::new();
    for t in &e.targets {
        if let Some(rid) = parse_region_id(src, t, errors) {
            if let (Some(tree), Some(oblast)) = (tree, oblast)
                && tree.contains(&rid)
                && !tree.is_within(&rid, oblast)
            {
                errors.push(src.error(
                    Some(t.span()),
                    format!(
                        "target {rid} ({}) is outside {}, where this file's regions are: put the order in its own oblast's file",
                        tree.full_name(&rid, Lang::En),
                        tree.name(oblast, Lang::En)
                    ),
                ));
            } else if defined(&rid) {
                targets.push(rid);
            } else {
                errors.push(src.error(Some(t.span()), format!("target {rid} is not a region defined in regions/")));
            }
        }
    }
    let issued_at = parse_datetime(src, &e.issued_at, errors);
    let expires_at = e.expires_at.as_ref().and_then(|d| parse_datetime(src, d, errors));
    if let (Some(i), Some(x), Some(span)) = (issued_at, expires_at, e.expires_at.as_ref().map(Spanned::span))
        && x <= i
    {
        errors.push(src.error(Some(span), "expires_at is not after issued_at"));
    }
    if e.hotline.as_ref().is_some_and(|h| h.trim().is_empty()) {
        errors.push(src.error(Some(e.id.span()), "hotline is empty"));
    }
    let mut assembly_points = Vec::new();
    for p in e.assembly_points {
        let span = p.span();
        let p = p.into_inner();
        let place = match &p.place {
            Some(s) => match parse_region_id(src, s, errors) {
                Some(rid) if defined(&rid) => Some(rid),
                Some(rid) => {
                    errors.push(src.error(Some(s.span()), format!("place {rid} is not a region defined in regions/")));
                    None
                }
                None => None,
            },
            None => None,
        };
        let mut at = p.at.as_ref().and_then(|a| parse_point(src, a, errors)).map(|pt| [pt.lat, pt.lon]);
        // A point written is held to Ukraine, and to its place's oblast when boundaries
        // are imported (the place's, else the file's oblast).
        if let (Some([lat, lon]), Some(a)) = (at, &p.at) {
            let area = place.as_ref().or(oblast);
            let boundary = tree.zip(area).and_then(|(t, id)| points::oblast_boundary(t, id));
            if let Some(why) = points::misplaced(lat, lon, boundary.as_ref().map(|(n, b)| (n.as_str(), *b))) {
                errors.push(src.error(Some(a.span()), format!("assembly point `{}`: {why}", p.name.uk)));
            }
        }
        // A resident must be able to find it: its own coordinates, else its place's
        // best known location, told to the operator.
        if p.at.is_none() {
            match (tree, &place) {
                (Some(t), Some(place_id)) => match points::best_location(t, place_id) {
                    Ok((pt, from)) => {
                        let what = points::told(t, place_id, &from, pt);
                        let (line, _) = line_col(src.text, span.start);
                        notes.push(format!(
                            "note: {}:{line}: order {id}, assembly point `{}`: {what}",
                            src.path.display(),
                            p.name.uk
                        ));
                        at = pt;
                    }
                    Err(why) => errors.push(
                        src.error(Some(span), format!("assembly point `{}` has no coordinates: {why}", p.name.uk)),
                    ),
                },
                // Without a tree the place cannot be looked up; its errors are told.
                (None, Some(_)) => {}
                (_, None) if p.place.is_some() => {}
                (_, None) => errors.push(src.error(
                    Some(span),
                    format!(
                        "assembly point `{}` has no coordinates: add at = [latitude, longitude] or a place",
                        p.name.uk
                    ),
                )),
            }
        }
        let mut times = Vec::new();
        for t in &p.times {
            if is_hh_mm(t.get_ref()) {
                times.push(t.get_ref().clone());
            } else {
                errors.push(src.error(Some(t.span()), format!("`{}` is not a time HH:MM", t.get_ref())));
            }
        }
        let at_from_place = p.at.is_none() && at.is_some();
        assembly_points.push(AssemblyPoint { name: p.name, address: p.address, place, at, at_from_place, times });
    }
    if errors.len() > before {
        return None;
    }
    Some(Order {
        id,
        status: e.status,
        targets,
        issued_at: issued_at?,
        expires_at,
        destination: e.destination,
        transport: e.transport,
        hotline: e.hotline,
        who: e.who,
        text: e.text,
        assembly_points,
    })
}

fn is_hh_mm(s: &str) -> bool {
    let Some((h, m)) = s.split_once(':') else { return false };
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    two_digits(h) && two_digits(m) && h.parse::<u8>().is_ok_and(|h| h < 24) && m.parse::<u8>().is_ok_and(|m| m < 60)
}

fn load_locales(dir: &Path, errors: &mut Vec<ConfigError>) -> Option<Composer> {
    let mut sources = Vec::new();
    for lang in Lang::ALL {
        let lang_dir = dir.join(lang.code());
        let files = match files_with_ext(&lang_dir, "ftl") {
            Ok(f) => f,
            Err(e) => {
                errors.push(file_error(&lang_dir, format!("cannot read directory: {e}")));
                continue;
            }
        };
        for path in files {
            match std::fs::read_to_string(&path) {
                Ok(text) => sources.push(CatalogueSource { lang, file: path.display().to_string(), text }),
                Err(e) => errors.push(file_error(&path, format!("cannot read: {e}"))),
            }
        }
    }
    match Composer::new(sources) {
        Ok(c) => Some(c),
        Err(errs) => {
            for e in errs {
                errors.push(match e {
                    CatalogueError::Syntax { file, line, message } => ConfigError {
                        file: file.into(),
                        line,
                        col: 1,
                        message: format!("Fluent syntax error: {message}"),
                    },
                    CatalogueError::Duplicate { file, id } => {
                        file_error(Path::new(&file), format!("message `{id}` is defined twice"))
                    }
                    CatalogueError::Missing { lang, id } => {
                        file_error(&dir.join(lang.code()), format!("message `{id}` is missing"))
                    }
                    CatalogueError::UnknownVariable { file, line, id, variable } => ConfigError {
                        file: file.into(),
                        line,
                        col: 1,
                        message: match spans::nearest(&variable, crate::messages::VARIABLES.iter().copied()) {
                            Some(near) => format!(
                                "message `{id}` uses `${variable}`, which sirena never passes (did you mean `${near}`?)"
                            ),
                            None => format!("message `{id}` uses `${variable}`, which sirena never passes"),
                        },
                    },
                });
            }
            None
        }
    }
}
