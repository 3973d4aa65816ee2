//! The command line: `serve`, `check`, `explain`, `geodb build|lookup`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};

use crate::config::ServerConfig;
use crate::config::pools::AlwaysUp;

#[derive(Parser, Debug)]
#[command(
    name = "geosteer",
    version,
    about = "Geo-aware authoritative DNS for CDN request steering"
)]
pub struct Cli {
    /// Log format (filter with RUST_LOG, e.g. RUST_LOG=geosteer=debug).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve DNS on the configured addresses.
    Serve {
        #[arg(long, short, default_value = "geosteer.yaml")]
        config: PathBuf,
        /// Listen here instead of the config's `listen` (repeatable).
        #[arg(long)]
        listen: Vec<SocketAddr>,
    },
    /// Load and validate everything `serve` would; print one line per problem.
    Check {
        #[arg(long, short, default_value = "geosteer.yaml")]
        config: PathBuf,
    },
    /// Show how a name would be answered for a client, without a network.
    Explain {
        /// The name, e.g. www.cdn.example
        name: String,
        /// Locate this client address (as the packet's source).
        #[arg(long, conflicts_with = "ecs", required_unless_present = "ecs")]
        client: Option<IpAddr>,
        /// Locate this ECS prefix, e.g. 203.0.113.0/24.
        #[arg(long)]
        ecs: Option<ipnet::IpNet>,
        #[arg(long = "type", default_value = "A")]
        qtype: String,
        #[arg(long)]
        json: bool,
        #[arg(long, short, default_value = "geosteer.yaml")]
        config: PathBuf,
    },
    /// Build or query MaxMind-format databases.
    Geodb {
        #[command(subcommand)]
        command: GeodbCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum GeodbCommand {
    /// Write a GeoIP2-City-schema database from a YAML or CSV list of networks.
    Build { source: PathBuf, out: PathBuf },
    /// Print the record for an address.
    Lookup {
        ip: IpAddr,
        #[arg(long, default_value = "geodb/demo-city.mmdb")]
        db: PathBuf,
    },
}

/// Sets up tracing: RUST_LOG filters, default `info`.
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Serve { config, listen } => {
            let mut cfg = ServerConfig::load(&config)?;
            if !listen.is_empty() {
                cfg.listen = listen;
            }
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(crate::app::serve(cfg))?;
            Ok(0)
        }
        Command::Check { config } => {
            let cfg = match ServerConfig::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    println!("{e}");
                    return Ok(1);
                }
            };
            match crate::reload::build_snapshot(&cfg, &AlwaysUp, 0) {
                Ok(snap) => {
                    let hosts: usize = snap.zones.values().map(|z| z.steering.hosts.len()).sum();
                    let edges: usize = snap.zones.values().map(|z| z.steering.edges.len()).sum();
                    println!(
                        "ok: {} zone(s), {} steered host(s), {} edge(s), geodb {}",
                        snap.zones.len(),
                        hosts,
                        edges,
                        if snap.geodb.is_some() {
                            "loaded"
                        } else {
                            "none"
                        }
                    );
                    Ok(0)
                }
                Err(errs) => {
                    println!("{errs}");
                    Ok(1)
                }
            }
        }
        Command::Explain {
            name,
            client,
            ecs,
            qtype,
            json,
            config,
        } => {
            let cfg = ServerConfig::load(&config)?;
            let snap = crate::reload::build_snapshot(&cfg, &AlwaysUp, 0)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let report = crate::explain::explain(&snap, &name, client, ecs, &qtype)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report.to_json())?);
            } else {
                print!("{}", report.to_text());
            }
            Ok(0)
        }
        Command::Geodb { command } => geodb(command),
    }
}

fn geodb(cmd: GeodbCommand) -> Result<i32> {
    match cmd {
        GeodbCommand::Build { source, out } => {
            let stats = crate::geo::build(&source, &out, crate::geo::Schema::City)
                .with_context(|| format!("building {}", out.display()))?;
            println!("wrote {}: {stats:?}", out.display());
            Ok(0)
        }
        GeodbCommand::Lookup { ip, db } => {
            let db = crate::geo::GeoDb::open(&db)?;
            match db.lookup(ip) {
                Some(m) => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&crate::geo::describe(&m))?
                    );
                    Ok(0)
                }
                None => bail!("{ip}: not in the database"),
            }
        }
    }
}
