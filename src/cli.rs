//! Command line: `sirena run | health | check-config | demo | feed decode | regions find|import | subscribers … | bench …`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config;
use crate::config::log::LogFormat;
use crate::demo::SmsKind;
use crate::messages::Lang;
use crate::messages::plural::count;

#[derive(Debug, Parser)]
#[command(name = "sirena", version, about = "Air-raid and evacuation alert broadcaster")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: poll feeds, watch region files, fan out to subscribers.
    Run {
        /// The config directory (sirena.toml, regions/, locales/).
        #[arg(long, default_value = "config")]
        config: PathBuf,
    },
    /// Ask a running daemon whether it is ready (GET /readyz): exit 0 when it answers
    /// 200, 1 otherwise, with a one-line reason. For Docker's HEALTHCHECK and monitoring.
    Health {
        /// Where to ask: a base such as http://127.0.0.1:8640 (the probe's path is
        /// added) or a full URL. Default: the config's [http] listen, or
        /// 127.0.0.1:8640 when the config cannot be read.
        #[arg(long)]
        url: Option<String>,
        #[arg(long, default_value = "config")]
        config: PathBuf,
        /// Ask GET /healthz instead: whether the process serves at all.
        #[arg(long)]
        live: bool,
    },
    /// Validate a config directory (every error as file:line:col) and the store the
    /// daemon would use (its directory writable, or PostgreSQL reachable); print the
    /// warnings; exit 1 on any error.
    CheckConfig {
        /// The config directory (sirena.toml, regions/, locales/); the same as --config.
        dir: Option<PathBuf>,
        /// The config directory, as every other command takes it. Default: config.
        #[arg(long = "config", value_name = "DIR")]
        config_flag: Option<PathBuf>,
    },
    /// Play the Kupiansk scenario against built-in simulators over loopback HTTP.
    Demo {
        /// Which feed the scenario is served from; the residents' messages are the same.
        #[arg(long, value_enum, default_value_t = FeedArg::AlertsInUa)]
        source: FeedArg,
    },
    /// Feed tools.
    Feed {
        #[command(subcommand)]
        command: FeedCommand,
    },
    /// Region tools.
    Regions {
        #[command(subcommand)]
        command: RegionsCommand,
    },
    /// Who an evacuation order would reach (by channel, language and place), the text
    /// each would read, and when the last would have it; sends and writes nothing.
    Preview {
        /// The order's `id` in the region files.
        order: String,
        #[arg(long, default_value = "config")]
        config: PathBuf,
    },
    /// The audit log: every order change, config reload (applied or refused),
    /// broadcast draft, approval, rejection, cancellation and drill, with who and when
    /// (Kyiv time).
    Audit {
        /// From this time on: `2026-12-01T10:00` (Kyiv time) or RFC 3339.
        #[arg(long, value_parser = crate::operators::cli::parse_since)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        #[arg(long, default_value = "config")]
        config: PathBuf,
    },
    /// Drills (`[[drill]]` in sirena.toml).
    Drills {
        #[command(subcommand)]
        command: DrillsCommand,
    },
    /// Subscriber lists as CSV: `channel,address,place,lang`.
    Subscribers {
        #[command(subcommand)]
        command: SubscribersCommand,
    },
    /// List residents' requests for help to evacuate, oldest first. The table masks
    /// phones and chat ids; `--format csv` is the call list, with them whole.
    HelpRequests {
        /// Only this evacuation order's requests.
        #[arg(long)]
        order: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: crate::help_requests::Format,
        #[arg(long, default_value = "config")]
        config: PathBuf,
    },
    /// Benchmarks that print the figures quoted in the docs.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Debug, Subcommand)]
enum RegionsCommand {
    /// Find regions by name or KATOTTG code, as the bot does.
    Find {
        name: String,
        #[arg(long, default_value = "config")]
        config: PathBuf,
    },
    /// Import the official KATOTTG codifier (the ministry's `;`-separated CSV) into
    /// `regions/katottg.generated.tsv`, read beside the hand-written region files, which
    /// override it. Importing the same file again changes nothing.
    ///
    /// With feed region lists, attaches their ids (alerts.in.ua `location_uid`, which
    /// is ukrainealarm's `regionId`) to oblasts, raions, hromadas and the cities they
    /// name, by oblast and name, and lists what it could not place; a hand-written
    /// `feed_id` overrides it (for renamings).
    Import {
        file: PathBuf,
        #[arg(long, default_value = "config")]
        config: PathBuf,
        /// alerts.in.ua's location list (`locations_hierarchy.json`).
        #[arg(long)]
        alerts_in_ua: Option<PathBuf>,
        /// ukrainealarm's `/api/v3/regions` answer, saved; tried for what the first
        /// list cannot place.
        #[arg(long)]
        ukrainealarm: Option<PathBuf>,
        /// Write the new file even if feed ids the old one holds would be gone. Without
        /// it, an import without feed lists keeps each region's feed id, and any import
        /// that would drop one is refused (nothing written), naming how many.
        #[arg(long)]
        drop_feed_ids: bool,
    },
    /// Import region boundaries (a GeoJSON FeatureCollection of Polygons and
    /// MultiPolygons keyed by KATOTTG: `katotth`, `katottg` or `id` in the properties)
    /// into `regions/boundaries.generated.tsv`. A shared location with no surveyed
    /// settlement near is placed in the region whose boundary holds it.
    ImportGeo {
        file: PathBuf,
        #[arg(long, default_value = "config")]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum DrillsCommand {
    /// What each stored drill run reached: share delivered per channel, p50 and p99
    /// time from the drill to the send, and possible duplicates (sent after more than
    /// one attempt). Newest first.
    Report {
        /// Only this drill's runs (its `id`).
        #[arg(long)]
        drill: Option<String>,
        #[arg(long, default_value = "config")]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum SubscribersCommand {
    /// Import subscribers from a CSV file; exit 1 if any row was rejected.
    ///
    /// The file has a header row `channel,address,place,lang` and one subscriber place
    /// per row, e.g. `sms,+380501234567,UA63080070010082928,uk` or
    /// `telegram,123456789,UA63080090010026457,en`. Channels: sms, telegram (a private
    /// chat; also telegram_chat), telegram_channel (only a region's channel as the
    /// region files name it). Phone numbers may be written +380…, 380…, 0501234567 or
    /// with spaces and dashes; they are stored as E.164. Every place must be a region of
    /// the config, every lang uk or en.
    ///
    /// Every bad row is reported with its line number and why; the good rows are still
    /// imported, and the exit code is 1. Importing the same file again changes nothing.
    /// An existing subscriber keeps their language; an inactive one is reactivated. A
    /// `sirena run` on the same store takes the imported subscribers into its matching
    /// within 5 s, no restart needed. SMS rows are kept when no [sms] gateway is
    /// configured, with a warning of how many wait for one (exit 0 all the same).
    Import {
        /// The CSV file (UTF-8).
        file: PathBuf,
        /// The config directory whose store and regions are used.
        #[arg(long, default_value = "config")]
        config: PathBuf,
    },
    /// Print every active subscriber and place as CSV, in the format import reads.
    Export {
        #[arg(long, default_value = "config")]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum FeedCommand {
    /// Decode a saved feed payload and print the alerts it holds as JSON lines (kind,
    /// region, level, threats, started_at, source); exit 1 if it does not decode.
    Decode {
        #[arg(long, value_enum)]
        source: FeedArg,
        file: PathBuf,
        /// The config whose regions map the feed's ids.
        #[arg(long, default_value = "config")]
        config: PathBuf,
    },
}

/// The feeds sirena reads, as named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum FeedArg {
    AlertsInUa,
    Ukrainealarm,
    Cap,
}

impl From<FeedArg> for crate::sim::feed::FeedKind {
    fn from(f: FeedArg) -> Self {
        use crate::sim::feed::FeedKind;
        match f {
            FeedArg::AlertsInUa => FeedKind::AlertsInUa,
            FeedArg::Ukrainealarm => FeedKind::UkraineAlarm,
            FeedArg::Cap => FeedKind::Cap,
        }
    }
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Fan one air raid out to N simulated Telegram residents under Telegram's limit.
    Fanout {
        #[arg(long, default_value_t = 2000)]
        residents: usize,
        /// Use paid broadcast (up to 1000 msg/s).
        #[arg(long)]
        paid: bool,
    },
    /// Match and enqueue one oblast air raid for N subscribers; measure the index, the
    /// outbox rows and a bot reply during the enqueue.
    Scale {
        #[arg(long, default_value_t = 1_000_000)]
        subscribers: usize,
    },
    /// The seed scenario: a mandatory evacuation order to N Kupiansk-raion residents
    /// and the raion's Telegram channel, against the platform's bound.
    Evacuate {
        #[arg(long, default_value_t = 12_000)]
        evacuees: usize,
        #[arg(long)]
        paid: bool,
    },
    /// From a feed change to the first sendMessage on the wire, over N changes one at a
    /// time: from the alerts.in.ua body served or, with --webhook, from the simulator's
    /// change through the ukrainealarm webhook.
    Latency {
        #[arg(long, default_value_t = 1000)]
        changes: usize,
        #[arg(long)]
        webhook: bool,
    },
    /// SIGKILL `sirena run` at random points of a fan-out, restart it on the same store,
    /// and count what was lost or sent twice.
    Crash {
        #[arg(long, default_value_t = 20)]
        kills: usize,
        #[arg(long, default_value_t = 10_000)]
        deliveries: usize,
    },
    /// Several `sirena run` nodes on one PostgreSQL (SIRENA_TEST_POSTGRES, default
    /// postgres://postgres@127.0.0.1:5432/postgres, a throwaway database): SIGKILL the
    /// leader mid-fan-out, then the next one; takeover time, losses and duplicates.
    Failover {
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        #[arg(long, default_value_t = 5000)]
        deliveries: usize,
    },
    /// Name search over the whole KATOTTG codifier: N queries as residents type them
    /// (names, Latin, typos, Russian spellings, nonsense), each timed.
    Search {
        #[arg(long, default_value_t = 10_000)]
        queries: usize,
        /// The codifier CSV; by default ../shared/data/katottg/kodifikator-16-05-2025.csv.
        #[arg(long)]
        codifier: Option<PathBuf>,
    },
    /// One air raid to N SMS residents through each gateway's simulator, at 100 texts/s.
    Sms {
        #[arg(long, default_value_t = 5000)]
        recipients: usize,
        #[arg(long, value_enum, default_value_t = GatewayArg::Both)]
        gateway: GatewayArg,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum GatewayArg {
    Turbosms,
    Twilio,
    Both,
    /// The generic HTTP gateway (`kind = "http"`, a JSON template).
    Generic,
}

impl GatewayArg {
    fn kinds(self) -> Vec<SmsKind> {
        match self {
            GatewayArg::Turbosms => vec![SmsKind::TurboSms],
            GatewayArg::Twilio => vec![SmsKind::Twilio],
            GatewayArg::Both => vec![SmsKind::TurboSms, SmsKind::Twilio],
            GatewayArg::Generic => vec![SmsKind::GenericJson],
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints its own timeline; the daemon's log would interleave with it.
    // RUST_LOG=info shows it anyway.
    let default_filter = match cli.command {
        Command::Run { .. } => "info",
        Command::Demo { .. } | Command::Bench { .. } => "off",
        _ => "warn",
    };
    let format = match log_format(&cli.command) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    init_tracing(default_filter, format);
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `SIRENA_LOG_FORMAT` if set, else `[log] format` of the config `sirena run` is given.
fn log_format(command: &Command) -> anyhow::Result<LogFormat> {
    if let Some(v) = std::env::var_os(config::log::FORMAT_ENV) {
        let v = v.to_string_lossy();
        return v.parse().with_context(|| format!("{} = \"{v}\"", config::log::FORMAT_ENV));
    }
    Ok(match command {
        Command::Run { config } => config::log::peek_format(config).unwrap_or_default(),
        _ => LogFormat::default(),
    })
}

/// Logs go to stderr (the journal, under systemd). Colour only on a terminal, and not
/// with `NO_COLOR` set: a file or the journal gets plain text.
fn init_tracing(default_filter: &str, format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Pretty => {
            let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            builder.with_ansi(colour).try_init()
        }
        LogFormat::Json => builder.json().flatten_event(true).with_ansi(false).try_init(),
    };
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run { config } => {
            let rt = runtime()?;
            // Before anything starts: a SIGTERM that came between the start and a lazily
            // installed handler would kill the daemon instead of stopping it.
            let shutdown = {
                let _in_runtime = rt.enter();
                shutdown_signal()
            };
            rt.block_on(crate::daemon::run(config, shutdown))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Health { url, config, live } => {
            let probe = if live { crate::health::Probe::Live } else { crate::health::Probe::Ready };
            let url = match crate::health::url(url.as_deref(), &config, probe) {
                Ok(url) => url,
                Err(e) => {
                    println!("{e}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            match rt.block_on(crate::health::ask(&url)) {
                Ok(line) => {
                    println!("{line}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(why) => {
                    println!("{why}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::CheckConfig { dir, config_flag } => {
            let dir = match (dir, config_flag) {
                (Some(a), Some(b)) if a != b => anyhow::bail!(
                    "two config directories given: {} and --config {}; give one",
                    a.display(),
                    b.display()
                ),
                (Some(d), _) | (None, Some(d)) => d,
                (None, None) => PathBuf::from("config"),
            };
            let ok = runtime()?.block_on(crate::check_config::run(&dir));
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Demo { source } => {
            let ok = runtime()?.block_on(crate::demo::run(source.into()))?;
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Feed { command: FeedCommand::Decode { source, file, config } } => {
            let c = config::load(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
            let body = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let kind = match source {
                FeedArg::AlertsInUa => crate::sources::decode::Payload::AlertsInUa,
                FeedArg::Ukrainealarm => crate::sources::decode::Payload::UkraineAlarm,
                FeedArg::Cap => crate::sources::decode::Payload::Cap,
            };
            match crate::sources::decode::decode(kind, &body, &c.tree) {
                Ok(out) => {
                    for line in out.lines {
                        println!("{line}");
                    }
                    for note in out.notes {
                        eprintln!("{}: {note}", file.display());
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("{}: {e}", file.display());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Regions { command: RegionsCommand::Find { name, config } } => {
            let c = config::load(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
            let found = c.tree.search(&name);
            if found.regions.is_empty() {
                println!("no region matches `{name}`");
                return Ok(ExitCode::FAILURE);
            }
            if !found.is_exact() {
                println!("no region is named `{name}`; did you mean:");
            }
            for r in found.regions {
                println!("{}  {:?}  {}", r.id, r.level, c.tree.full_name(&r.id, Lang::Uk));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Regions {
            command: RegionsCommand::Import { file, config, alerts_in_ua, ukrainealarm, drop_feed_ids },
        } => {
            use config::codifier::{FeedList, KeepFeedIds};
            let lists: Vec<FeedList> = alerts_in_ua
                .map(FeedList::AlertsInUa)
                .into_iter()
                .chain(ukrainealarm.map(FeedList::UkraineAlarm))
                .collect();
            let keep = if drop_feed_ids { KeepFeedIds::Drop } else { KeepFeedIds::Refuse };
            let report = config::codifier::import(&file, &config, &lists, keep)?;
            if !lists.is_empty() {
                println!(
                    "feed ids: {} placed, {} not:",
                    count(report.feed_ids, "region", "regions"),
                    count(report.unmatched.len(), "uid", "uids")
                );
                for u in &report.unmatched {
                    println!("  {} {}: {}", u.place.uid, u.place.name, u.reason);
                }
            } else if report.kept_feed_ids > 0 {
                println!(
                    "feed ids: {} kept from the file this import replaces (no feed lists given)",
                    report.kept_feed_ids
                );
            }
            if report.dropped_feed_ids > 0 {
                println!("feed ids: {} dropped (--drop-feed-ids)", report.dropped_feed_ids);
            }
            let levels: Vec<String> = report.levels.iter().map(|(l, n)| format!("{n} {l:?}")).collect();
            println!(
                "{}: {} ({}), {}",
                report.path.display(),
                count(report.regions, "region", "regions"),
                levels.join(", "),
                if report.changed { "written" } else { "unchanged" }
            );
            // The result must load with the hand-written files; otherwise say why, so
            // the operator fixes it before a daemon reloads (and refuses) it.
            match config::load(&config) {
                Ok(c) => {
                    println!("{}: ok ({})", config.display(), count(c.tree.len(), "region", "regions"));
                    Ok(ExitCode::SUCCESS)
                }
                Err(errors) => {
                    for e in &errors.0 {
                        println!("{e}");
                    }
                    eprintln!(
                        "{} in {} with the imported regions",
                        count(errors.0.len(), "error", "errors"),
                        config.display()
                    );
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Regions { command: RegionsCommand::ImportGeo { file, config } } => {
            let report = config::codifier::import_geo(&file, &config)?;
            println!(
                "{}: {}, {}, {}",
                report.path.display(),
                count(report.regions, "region", "regions"),
                count(report.polygons, "polygon", "polygons"),
                if report.changed { "written" } else { "unchanged" }
            );
            match config::load(&config) {
                Ok(c) => {
                    println!(
                        "{}: ok ({} with a boundary)",
                        config.display(),
                        count(c.tree.locator().boundaries().regions.len(), "region", "regions")
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(errors) => {
                    for e in &errors.0 {
                        println!("{e}");
                    }
                    eprintln!(
                        "{} in {} with the imported boundaries",
                        count(errors.0.len(), "error", "errors"),
                        config.display()
                    );
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Subscribers { command: SubscribersCommand::Import { file, config } } => {
            let report = runtime()?.block_on(crate::subscribers::import_file(&config, &file))?;
            for r in &report.rejected {
                // The operator sees what they typed; the log keeps numbers masked.
                eprintln!("{}", r.as_typed());
                tracing::info!(row = %r, "subscriber row rejected");
            }
            println!(
                "rows read: {}, imported new: {}, already there: {}, rejected: {} ({})",
                report.read,
                report.new,
                report.already,
                report.rejected.len(),
                count(report.created, "new subscriber", "new subscribers")
            );
            if let Some(w) = &report.sms_waiting {
                eprintln!("{w}");
            }
            if report.rejected.is_empty() {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "{} of {} rejected; the others were imported",
                    count(report.rejected.len(), "row", "rows"),
                    file.display()
                );
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Preview { order, config } => {
            let preview = runtime()?.block_on(crate::preview::run(&config, &order))?;
            print!("{}", crate::preview::report(&preview));
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit { since, config } => {
            print!("{}", runtime()?.block_on(crate::operators::cli::audit(&config, since))?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Drills { command: DrillsCommand::Report { drill, config } } => {
            print!("{}", runtime()?.block_on(crate::operators::cli::drills_report(&config, drill.as_deref()))?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Subscribers { command: SubscribersCommand::Export { config } } => {
            print!("{}", runtime()?.block_on(crate::subscribers::export(&config))?);
            Ok(ExitCode::SUCCESS)
        }
        Command::HelpRequests { order, format, config } => {
            print!("{}", runtime()?.block_on(crate::help_requests::list(&config, order.as_deref(), format))?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { command } => {
            let rt = runtime()?;
            let report = match command {
                BenchCommand::Fanout { residents, paid } => rt.block_on(crate::bench::fanout(residents, paid))?,
                BenchCommand::Scale { subscribers } => rt.block_on(crate::bench::scale(subscribers))?,
                BenchCommand::Evacuate { evacuees, paid } => rt.block_on(crate::bench::evacuate(evacuees, paid))?,
                BenchCommand::Latency { changes, webhook } => rt.block_on(crate::bench::latency(changes, webhook))?,
                BenchCommand::Crash { kills, deliveries } => rt.block_on(crate::bench::crash(kills, deliveries))?,
                BenchCommand::Failover { nodes, deliveries } => {
                    rt.block_on(crate::bench::failover(nodes, deliveries))?
                }
                BenchCommand::Search { queries, codifier } => crate::bench::search(queries, codifier.as_deref())?,
                BenchCommand::Sms { recipients, gateway } => {
                    rt.block_on(crate::bench::sms(recipients, &gateway.kinds(), crate::bench::SMS_PER_SEC))?
                }
            };
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Listens for SIGTERM and SIGINT (Ctrl-C) from the moment it is called (inside the
/// runtime); the future resolves on the first of them.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        // SIGHUP's default action terminates. Once tokio handles a signal it does for
        // the rest of the process, so a SIGHUP before the config watcher listens is
        // dropped here, not fatal, and the watcher's first reload reads whatever changed.
        let _hup = signal(SignalKind::hangup());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                (term, int) => {
                    let e = term.err().or(int.err()).map(|e| e.to_string()).unwrap_or_default();
                    tracing::error!(error = %e, "cannot listen for SIGTERM or SIGINT; Ctrl-C only");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
