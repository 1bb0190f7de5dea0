//! Command line: `sirena run | check-config | demo | feed decode | regions find | subscribers … | bench …`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config;
use crate::demo::SmsKind;
use crate::messages::Lang;

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
    /// Validate a config directory; print every error as file:line:col; exit 1 on any.
    CheckConfig {
        #[arg(default_value = "config")]
        dir: PathBuf,
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
    /// Subscriber lists as CSV: `channel,address,place,lang`.
    Subscribers {
        #[command(subcommand)]
        command: SubscribersCommand,
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
    /// running `sirena run` matches the imported subscribers after its next restart.
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
}

impl GatewayArg {
    fn kinds(self) -> Vec<SmsKind> {
        match self {
            GatewayArg::Turbosms => vec![SmsKind::TurboSms],
            GatewayArg::Twilio => vec![SmsKind::Twilio],
            GatewayArg::Both => vec![SmsKind::TurboSms, SmsKind::Twilio],
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
    init_tracing(default_filter);
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run { config } => {
            runtime()?.block_on(crate::daemon::run(config, shutdown_signal()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { dir } => match config::load(&dir) {
            Ok(c) => {
                println!("{}: ok ({} regions, {} evacuation orders)", dir.display(), c.tree.len(), c.orders.len());
                Ok(ExitCode::SUCCESS)
            }
            Err(errors) => {
                for e in &errors.0 {
                    println!("{e}");
                }
                eprintln!("{} error(s) in {}", errors.0.len(), dir.display());
                Ok(ExitCode::FAILURE)
            }
        },
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
            let found = c.tree.find(&name);
            if found.is_empty() {
                println!("no region matches `{name}`");
                return Ok(ExitCode::FAILURE);
            }
            for r in found {
                println!("{}  {:?}  {}", r.id, r.level, c.tree.qualified_name(&r.id, Lang::Uk));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Subscribers { command: SubscribersCommand::Import { file, config } } => {
            let report = runtime()?.block_on(crate::subscribers::import_file(&config, &file))?;
            for r in &report.rejected {
                eprintln!("{r}");
            }
            println!(
                "rows read: {}, imported new: {}, already there: {}, rejected: {} ({} new subscribers)",
                report.read,
                report.new,
                report.already,
                report.rejected.len(),
                report.created
            );
            if report.rejected.is_empty() {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("{} row(s) of {} rejected; the others were imported", report.rejected.len(), file.display());
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Subscribers { command: SubscribersCommand::Export { config } } => {
            print!("{}", runtime()?.block_on(crate::subscribers::export(&config))?);
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
                BenchCommand::Sms { recipients, gateway } => {
                    rt.block_on(crate::bench::sms(recipients, &gateway.kinds(), crate::bench::SMS_PER_SEC))?
                }
            };
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM; Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
