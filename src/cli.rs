//! The command line: `serve`, `check`, `explain`, `status`, `reload`,
//! `drain|down|up|auto|load EDGE`, `fleet status`, `rum export`,
//! `geodb build|lookup`, `dnssec keygen|ds`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};

use crate::config::ServerConfig;
use crate::config::pools::AlwaysUp;
use crate::health::AdminState;

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
    /// Show how a name is answered for a client: by the running server
    /// (asked over its API, so its live health, drains and loads count)
    /// when the config's `http:` (or --http) reaches one, else from the
    /// files, saying so.
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
        /// Ask the server here; default: the config's `http:`.
        #[arg(long, env = "GEOSTEER_HTTP")]
        http: Option<String>,
        /// Answer from the files even when a server is running (its live
        /// state then does not count).
        #[arg(long, conflicts_with = "http")]
        files: bool,
    },
    /// Show a running server's zones and edges (from its HTTP API).
    Status {
        #[command(flatten)]
        api: ApiArgs,
        /// Print the raw JSON of /api/status and /api/edges.
        #[arg(long)]
        json: bool,
    },
    /// The fleet as a running server sees it (GET /api/fleet).
    Fleet {
        #[command(subcommand)]
        command: FleetCommand,
    },
    /// Ask a running server to reload its files now (POST /api/reload).
    Reload {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Steering from real users: what was learned.
    Rum {
        #[command(subcommand)]
        command: RumCommand,
    },
    /// Drain an edge on a running server: it gets new clients only when
    /// nothing else can serve them.
    Drain(OverrideArgs),
    /// Take an edge out on a running server: it gets no traffic.
    Down(OverrideArgs),
    /// Serve from an edge whatever its probes and load say.
    Up(OverrideArgs),
    /// Lift an edge's override: probes and load decide again.
    Auto {
        edge: String,
        /// Only in this zone (default: every zone with an edge of that name).
        #[arg(long)]
        zone: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Push an edge's load (0 to 1), valid for `--ttl`.
    Load {
        edge: String,
        /// 0.0 (idle) to 1.0 (full).
        load: f64,
        /// How long the reading counts: `60s`, `5m`, or seconds.
        #[arg(long, default_value = "60s")]
        ttl: String,
        /// Only in this zone (default: every zone with an edge of that name).
        #[arg(long)]
        zone: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Build or query MaxMind-format databases.
    Geodb {
        #[command(subcommand)]
        command: GeodbCommand,
    },
    /// DNSSEC keys: make them, print the DS for the parent.
    Dnssec {
        #[command(subcommand)]
        command: DnssecCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum RumCommand {
    /// Write the learned table in the `rtt.csv` format (client,edge,rtt_ms,
    /// samples): from a running server's API, or with --offline from its
    /// state file.
    Export {
        #[command(flatten)]
        api: ApiArgs,
        /// The zone (needed when several zones learned).
        #[arg(long)]
        zone: Option<String>,
        /// Write here instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Read `rum.state_file` instead of asking the server (this
        /// instance's own cells only; the fleet's live in etcd).
        #[arg(long)]
        offline: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum DnssecCommand {
    /// Write a new key pair in BIND's format (K<zone>.+<alg>+<tag>.key/.private).
    Keygen {
        zone: String,
        /// A key-signing key (flags 257); default a zone-signing key (256).
        #[arg(long)]
        ksk: bool,
        /// 13 (ECDSAP256SHA256) or 15 (ED25519).
        #[arg(long, default_value_t = 13)]
        alg: u8,
        /// Where to write; default: the config's `dnssec.keys`, else `keys`.
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, short, default_value = "geosteer.yaml")]
        config: PathBuf,
    },
    /// Print the DS records (SHA-256) of the zone's active KSKs, for the parent.
    Ds {
        zone: String,
        /// Key directory; default: the config's `dnssec.keys`, else `keys`.
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, short, default_value = "geosteer.yaml")]
        config: PathBuf,
    },
}

/// `drain|down|up EDGE [--for 2h] [--reason "fibre cut"]`.
#[derive(clap::Args, Debug)]
pub struct OverrideArgs {
    pub edge: String,
    /// Only in this zone (default: every zone with an edge of that name).
    #[arg(long)]
    pub zone: Option<String>,
    /// Lift the override by itself after this long (`2h`, `30m`, seconds).
    #[arg(long = "for", value_name = "DURATION")]
    pub for_: Option<String>,
    /// Why, shown with the override in status, on the page and in metrics.
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Where a running server's HTTP API is.
#[derive(clap::Args, Debug)]
pub struct ApiArgs {
    /// The server's `http` address; default: the config's, else 127.0.0.1:8053.
    #[arg(long, env = "GEOSTEER_HTTP")]
    pub http: Option<String>,
    /// Bearer token for mutating calls; default: the config's `http_token`.
    #[arg(long, env = "GEOSTEER_HTTP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Read the defaults above from this config, if it exists.
    #[arg(long, short, default_value = "geosteer.yaml")]
    pub config: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum FleetCommand {
    /// Instances, their liveness, verdicts per edge, and which serve
    /// different files. Exits 1 when some instance's files differ.
    Status {
        #[command(flatten)]
        api: ApiArgs,
        /// Print the raw JSON of /api/fleet.
        #[arg(long)]
        json: bool,
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

/// Sets up tracing: RUST_LOG filters, default `info`. Colour only when
/// stderr is a terminal (a log file or journald gets plain text), and
/// never with `NO_COLOR` set.
pub fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Whether logs get ANSI colour: on a terminal, unless `NO_COLOR` is set
/// to something (<https://no-color.org>).
fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// An error and its causes on one line, each cause once: most of ours
/// already say their cause, which `{:#}` would repeat.
pub fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let t = c.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        cause = c.source();
    }
    text
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
            // What `serve` refuses before building, in its words.
            if let Err(e) = crate::app::preflight(&cfg) {
                println!("{}", error_text(&e));
                return Ok(1);
            }
            // The same build and load-file checks a reload runs, so the
            // messages match what /api/status shows.
            let built = crate::reload::build_snapshot(&cfg, &AlwaysUp, 0);
            match built {
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
                    let mut zones: Vec<_> = snap.zones.values().collect();
                    zones.sort_by(|a, b| a.name.cmp(&b.name));
                    for z in zones {
                        if let Some(s) = &z.dnssec {
                            let keys: Vec<String> = s
                                .keys
                                .iter()
                                .map(|(k, st)| {
                                    format!("{} {} {} {st:?}", k.tag, k.algorithm, k.role())
                                        .to_lowercase()
                                })
                                .collect();
                            println!("signed: {} keys [{}]", z.name, keys.join(", "));
                        }
                    }
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
            http,
            files,
        } => {
            let q = Question {
                name,
                client,
                ecs,
                qtype,
            };
            explain(&q, json, &config, http, files)
        }
        Command::Rum {
            command:
                RumCommand::Export {
                    api,
                    zone,
                    out,
                    offline,
                },
        } => rum_export(api, zone, out, offline),
        Command::Geodb { command } => geodb(command),
        Command::Dnssec { command } => dnssec(command),
        Command::Status { api, json } => status(api, json),
        Command::Reload { api } => reload(api),
        Command::Drain(a) => set_override(a, AdminState::Drain),
        Command::Down(a) => set_override(a, AdminState::Down),
        Command::Up(a) => set_override(a, AdminState::Up),
        Command::Auto { edge, zone, api } => set_override(
            OverrideArgs {
                edge,
                zone,
                for_: None,
                reason: None,
                api,
            },
            AdminState::Auto,
        ),
        Command::Load {
            edge,
            load,
            ttl,
            zone,
            api,
        } => push_load(&edge, load, &ttl, zone.as_deref(), &api),
        Command::Fleet {
            command: FleetCommand::Status { api, json },
        } => fleet_status(api, json),
    }
}

/// What `geosteer explain` asks.
struct Question {
    name: String,
    client: Option<IpAddr>,
    ecs: Option<ipnet::IpNet>,
    qtype: String,
}

/// Why a running server gave no report.
enum Asked {
    /// Nothing answered there: fall back to the files.
    Unreachable(String),
    /// It answered, with an error (a bad name, a bad type).
    Refused(String),
}

/// `GET /api/explain` on a running server.
fn ask_server(base: &str, q: &Question) -> Result<serde_json::Value, Asked> {
    let mut url = reqwest::Url::parse(&format!("{base}/api/explain"))
        .map_err(|e| Asked::Unreachable(format!("{base}: {e}")))?;
    {
        let mut p = url.query_pairs_mut();
        p.append_pair("name", &q.name);
        p.append_pair("type", &q.qtype);
        if let Some(c) = q.client {
            p.append_pair("client", &c.to_string());
        }
        if let Some(e) = q.ecs {
            p.append_pair("ecs", &e.to_string());
        }
    }
    crate::health::ensure_crypto_provider();
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(2))
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| Asked::Unreachable(e.to_string()))?;
    let got = block_on(async {
        let resp = client.get(url).send().await?;
        let code = resp.status();
        let body: serde_json::Value = resp.json().await?;
        Ok::<_, reqwest::Error>((code, body))
    })
    .map_err(|e| Asked::Unreachable(e.to_string()))?;
    match got {
        Ok((code, body)) if code.is_success() => Ok(body),
        Ok((code, body)) => Err(Asked::Refused(format!(
            "HTTP {code}: {}",
            body["error"].as_str().unwrap_or("unexpected answer")
        ))),
        Err(e) => {
            // The root cause says it best ("Connection refused").
            let mut root: &dyn std::error::Error = &e;
            while let Some(c) = root.source() {
                root = c;
            }
            Err(Asked::Unreachable(root.to_string()))
        }
    }
}

/// `geosteer explain`: the running server's answer when one is reachable,
/// else the files', with a line saying which.
fn explain(
    q: &Question,
    json: bool,
    config: &std::path::Path,
    http: Option<String>,
    files: bool,
) -> Result<i32> {
    let cfg = if config.exists() || http.is_none() {
        Some(ServerConfig::load(config)?)
    } else {
        None
    };
    let server = (!files)
        .then(|| http.or_else(|| cfg.as_ref().and_then(|c| c.http).map(|a| a.to_string())))
        .flatten()
        .map(|a| base_url(&a));
    let why_files = match &server {
        Some(base) => match ask_server(base, q) {
            Ok(mut report) => {
                let said = format!(
                    "by the running server at {base}, with its live health, drains and loads"
                );
                if json {
                    report["answered_by"] = serde_json::json!({ "server": base, "live": true });
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    println!("answered  {said}");
                    print!("{}", crate::explain::text(&report));
                }
                return Ok(0);
            }
            Err(Asked::Refused(e)) => bail!("{base}/api/explain: {e}"),
            Err(Asked::Unreachable(e)) => format!("the server at {base} did not answer ({e})"),
        },
        None if files => "--files".to_owned(),
        None => "no `http:` in the config to ask a running server".to_owned(),
    };
    let Some(cfg) = cfg else {
        bail!("{}: no config to answer from", config.display());
    };
    let snap =
        crate::reload::build_snapshot(&cfg, &AlwaysUp, 0).map_err(|e| anyhow::anyhow!("{e}"))?;
    let report = crate::explain::explain(&snap, &q.name, q.client, q.ecs, &q.qtype, None)?;
    let note = format!(
        "from the files ({why_files}): live state (health checks, drains, pushed loads) is not applied; every edge counts as up"
    );
    if json {
        let mut v = report.to_json();
        v["answered_by"] = serde_json::json!({ "files": cfg.path, "live": false, "note": note });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("answered  {note}");
        print!("{}", report.to_text());
    }
    Ok(0)
}

/// `http://addr` for an address, or the URL as given.
fn base_url(addr: &str) -> String {
    if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.trim_end_matches('/').to_string()
    } else {
        format!("http://{addr}")
    }
}

/// The base URL and token for talking to a running server.
fn api_target(args: &ApiArgs) -> Result<(String, Option<String>)> {
    let cfg = if args.config.exists() {
        Some(ServerConfig::load(&args.config)?)
    } else {
        None
    };
    let addr = match &args.http {
        Some(a) => a.clone(),
        None => cfg
            .as_ref()
            .and_then(|c| c.http)
            .map_or_else(|| "127.0.0.1:8053".to_string(), |a| a.to_string()),
    };
    let base = base_url(&addr);
    let token = args
        .token
        .clone()
        .filter(|t| !t.is_empty())
        .or_else(|| cfg.and_then(|c| c.http_token));
    Ok((base, token))
}

fn http_client() -> Result<reqwest::Client> {
    crate::health::ensure_crypto_provider();
    Ok(reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?)
}

/// Runs one small async job (an HTTP call) from the synchronous CLI.
fn block_on<F: std::future::Future>(f: F) -> Result<F::Output> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(f))
}

async fn get_json(client: &reqwest::Client, url: &str) -> Result<serde_json::Value> {
    let resp = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let code = resp.status();
    if !code.is_success() {
        bail!("GET {url}: HTTP {code}");
    }
    resp.json()
        .await
        .with_context(|| format!("GET {url}: not JSON"))
}

/// `geosteer rum export`.
fn rum_export(
    args: ApiArgs,
    zone: Option<String>,
    out: Option<PathBuf>,
    offline: bool,
) -> Result<i32> {
    let zone = zone.map(|z| if z.ends_with('.') { z } else { format!("{z}.") });
    let csv = if offline {
        let cfg = ServerConfig::load(&args.config)?;
        let Some(r) = cfg.rum else {
            bail!("{}: no `rum:` section", args.config.display());
        };
        let mut st = crate::rum::State::new(
            r.min_samples,
            r.half_life.as_secs_f64(),
            r.max_age.as_secs(),
        );
        crate::rum::persist::load(&r.state_file, &mut st)?;
        st.expire(crate::clock::unix_now());
        let zone = match zone {
            Some(z) => z,
            None => {
                let names: Vec<&String> = st.zones.keys().collect();
                match names[..] {
                    [one] => one.clone(),
                    [] => bail!("{}: nothing learned yet", r.state_file.display()),
                    _ => bail!("several zones learned ({names:?}): give --zone"),
                }
            }
        };
        crate::rum::api::export(&st, &zone)
            .with_context(|| format!("nothing learned for zone {zone}"))?
    } else {
        let (base, _) = api_target(&args)?;
        let url = match &zone {
            Some(z) => format!("{base}/api/rum/export?zone={z}"),
            None => format!("{base}/api/rum/export"),
        };
        block_on(async {
            let resp = http_client()?
                .get(&url)
                .send()
                .await
                .with_context(|| format!("GET {url}"))?;
            let code = resp.status();
            let body = resp.text().await?;
            if !code.is_success() {
                bail!("GET {url}: HTTP {code}: {}", body.trim());
            }
            Ok(body)
        })??
    };
    match out {
        Some(p) => std::fs::write(&p, csv).with_context(|| format!("writing {}", p.display()))?,
        None => print!("{csv}"),
    }
    Ok(0)
}

/// `geosteer status`: zones and edges as two short tables.
fn status(args: ApiArgs, json: bool) -> Result<i32> {
    let (base, _) = api_target(&args)?;
    let client = http_client()?;
    let (st, edges) = block_on(async {
        let st = get_json(&client, &format!("{base}/api/status")).await?;
        let edges = get_json(&client, &format!("{base}/api/edges")).await?;
        anyhow::Ok((st, edges))
    })??;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "status": st, "edges": edges }))?
        );
        return Ok(0);
    }
    print!("{}", status_text(&st, &edges));
    Ok(0)
}

/// Renders `/api/status` and `/api/edges` for people.
pub fn status_text(st: &serde_json::Value, edges: &serde_json::Value) -> String {
    use std::fmt::Write;
    let s = |v: &serde_json::Value| match v {
        serde_json::Value::String(x) => x.clone(),
        serde_json::Value::Null => "-".to_string(),
        other => other.to_string(),
    };
    let mut out = String::new();
    let last = &st["last_reload"];
    let _ = writeln!(
        out,
        "geosteer {}  up {}s  generation {}  last reload: {} ({}, {:.1} ms)",
        s(&st["version"]),
        s(&st["uptime_secs"]),
        s(&st["generation"]),
        if last["ok"] == true { "ok" } else { "FAILED" },
        s(&last["trigger"]),
        last["duration_ms"].as_f64().unwrap_or(0.0),
    );
    if let Some(errs) = last["errors"].as_array() {
        for e in errs {
            let _ = writeln!(out, "  error: {}", s(e));
        }
    }
    match st["geodb"].as_object() {
        Some(db) => {
            let _ = writeln!(
                out,
                "geodb {}  {}  built {}",
                s(&db["path"]),
                s(&db["database_type"]),
                db["build_epoch"].as_u64().map_or_else(
                    || "-".to_string(),
                    |t| humantime::format_rfc3339_seconds(
                        std::time::UNIX_EPOCH + std::time::Duration::from_secs(t)
                    )
                    .to_string()
                )
            );
        }
        None => {
            let _ = writeln!(out, "geodb none");
        }
    }
    let _ = writeln!(out);
    let mut rows = vec![vec![
        "ZONE".to_string(),
        "HOSTS".into(),
        "EDGES".into(),
        "NAMES".into(),
    ]];
    for z in st["zones"].as_array().into_iter().flatten() {
        rows.push(vec![
            s(&z["name"]),
            z["hosts"].as_array().map_or(0, |h| h.len()).to_string(),
            s(&z["edges"]),
            s(&z["names"]),
        ]);
    }
    table(&mut out, &rows);
    // Signed zones: each key and the DS for the parent.
    for z in st["zones"].as_array().into_iter().flatten() {
        let Some(d) = z["dnssec"].as_object() else {
            continue;
        };
        let keys: Vec<String> = d["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|k| {
                format!(
                    "{} {} {} {}",
                    k["tag"],
                    s(&k["algorithm_name"]),
                    s(&k["role"]),
                    s(&k["state"])
                )
            })
            .collect();
        let _ = writeln!(out, "dnssec {}: {}", s(&z["name"]), keys.join(", "));
        for ds in d["ds"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "  {}", s(ds));
        }
    }
    let _ = writeln!(out);
    let mut rows = vec![vec![
        "ZONE".to_string(),
        "EDGE".into(),
        "EFFECTIVE".into(),
        "STATE".into(),
        "ADMIN".into(),
        "LOAD".into(),
        "CHECK".into(),
        "LAST ERROR".into(),
    ]];
    for e in edges.as_array().into_iter().flatten() {
        rows.push(vec![
            s(&e["zone"]),
            s(&e["name"]),
            s(&e["effective"]),
            s(&e["state"]),
            admin_text(e),
            e["last_load"]
                .as_f64()
                .map_or_else(|| "-".to_string(), |l| format!("{l:.2}")),
            s(&e["check"]),
            s(&e["last_error"]),
        ]);
    }
    table(&mut out, &rows);
    out
}

/// An edge's ADMIN cell: the override, why, and how long it still holds.
fn admin_text(e: &serde_json::Value) -> String {
    let mut out = e["admin"].as_str().unwrap_or("-").to_string();
    let mut extra = Vec::new();
    if let Some(r) = e["admin_reason"].as_str() {
        extra.push(r.to_string());
    }
    if let Some(secs) = e["admin_expires_in_secs"].as_f64() {
        extra.push(format!(
            "{} left",
            humantime::format_duration(std::time::Duration::from_secs(secs as u64))
        ));
    }
    if !extra.is_empty() {
        out.push_str(&format!(" ({})", extra.join("; ")));
    }
    out
}

/// `geosteer fleet status`.
fn fleet_status(args: ApiArgs, json: bool) -> Result<i32> {
    let (base, _) = api_target(&args)?;
    let client = http_client()?;
    let report = block_on(get_json(&client, &format!("{base}/api/fleet")))??;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", fleet_text(&report));
    }
    let drift = report["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|i| i["drift"] == true);
    Ok(if drift { 1 } else { 0 })
}

/// Renders `/api/fleet` for people.
pub fn fleet_text(r: &serde_json::Value) -> String {
    use std::fmt::Write;
    let s = |v: &serde_json::Value| match v {
        serde_json::Value::String(x) => x.clone(),
        serde_json::Value::Null => "-".to_string(),
        other => other.to_string(),
    };
    let short = |v: &serde_json::Value| s(v).chars().take(12).collect::<String>();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "fleet {}  quorum {}  this instance {}  etcd {}",
        s(&r["prefix"]),
        s(&r["health_quorum"]),
        s(&r["instance"]),
        if r["connected"] == true {
            "connected".to_string()
        } else {
            format!("DISCONNECTED ({})", s(&r["last_error"]))
        }
    );
    let _ = writeln!(out);
    let mut rows = vec![vec![
        "INSTANCE".to_string(),
        "LIVE".into(),
        "GENERATION".into(),
        "FILES".into(),
        "DRIFT".into(),
    ]];
    let mut names = Vec::new();
    for i in r["instances"].as_array().into_iter().flatten() {
        let mut name = s(&i["name"]);
        names.push(name.clone());
        if i["self"] == true {
            name.push_str(" (self)");
        }
        let drift = if i["drift"] == true {
            let files: Vec<String> = i["differs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(&s)
                .collect();
            format!("DIFFERENT FILES: {}", files.join(", "))
        } else {
            "-".into()
        };
        rows.push(vec![
            name,
            if i["live"] == true { "yes" } else { "no" }.into(),
            s(&i["generation"]),
            short(&i["files_hash"]),
            drift,
        ]);
    }
    table(&mut out, &rows);
    let _ = writeln!(out);
    let mut head = vec![
        "ZONE".to_string(),
        "EDGE".into(),
        "FLEET".into(),
        "EFFECTIVE".into(),
    ];
    head.extend(names.iter().cloned());
    let mut rows = vec![head];
    for e in r["edges"].as_array().into_iter().flatten() {
        let mut row = vec![
            s(&e["zone"]),
            s(&e["edge"]),
            s(&e["fleet"]),
            s(&e["effective"]),
        ];
        for n in &names {
            row.push(s(&e["verdicts"][n.as_str()]));
        }
        rows.push(row);
    }
    table(&mut out, &rows);
    out
}

/// Left-aligned columns, two spaces apart.
fn table(out: &mut String, rows: &[Vec<String>]) {
    use std::fmt::Write;
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            let _ = write!(line, "{c:<w$}  ", w = widths[i]);
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// `/api/edges/{edge}/...` with `?zone=` when given.
fn edge_url(base: &str, edge: &str, what: &str, zone: Option<&str>) -> String {
    let mut url = format!("{base}/api/edges/{}/{what}", path_segment(edge));
    if let Some(z) = zone {
        url.push_str("?zone=");
        url.push_str(&path_segment(z));
    }
    url
}

/// Percent-encodes what is not safe in a path segment or query value.
fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sends one mutating call; returns the exit code: 0 done, 1 refused
/// (unknown edge, bad value, token), 2 not reachable.
fn mutate(
    args: &ApiArgs,
    method: reqwest::Method,
    url: &str,
    body: serde_json::Value,
    done: impl FnOnce(&serde_json::Value) -> String,
) -> Result<i32> {
    let (_, token) = api_target(args)?;
    let client = http_client()?;
    let mut req = client.request(method.clone(), url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let sent = block_on(async {
        let resp = req.send().await?;
        let code = resp.status();
        let text = resp.text().await?;
        Ok::<_, reqwest::Error>((code, text))
    })?;
    let (code, text) = match sent {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "geosteer: cannot reach the server: {method} {url}: {e} (is it running, and is `http:` in its config or --http right?)"
            );
            return Ok(2);
        }
    };
    let body: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    if code.is_success() {
        println!("{}", done(&body));
        return Ok(0);
    }
    let why = body["error"].as_str().unwrap_or(text.trim());
    match code.as_u16() {
        401 => eprintln!(
            "geosteer: the server wants its token: --token, GEOSTEER_HTTP_TOKEN or the config's http_token ({why})"
        ),
        _ => eprintln!("geosteer: {method} {url}: HTTP {code}: {why}"),
    }
    Ok(1)
}

/// `geosteer drain|down|up|auto EDGE`.
fn set_override(a: OverrideArgs, state: AdminState) -> Result<i32> {
    if let Some(d) = &a.for_ {
        crate::duration::parse(d).map_err(|e| anyhow::anyhow!("--for: {e}"))?;
    }
    let (base, _) = api_target(&a.api)?;
    let url = edge_url(&base, &a.edge, "admin", a.zone.as_deref());
    let mut body = serde_json::json!({ "state": state });
    if let Some(d) = &a.for_ {
        body["for"] = d.clone().into();
    }
    if let Some(r) = &a.reason {
        body["reason"] = r.clone().into();
    }
    let edge = a.edge.clone();
    mutate(&a.api, reqwest::Method::POST, &url, body, move |b| {
        let n = b["matched"].as_u64().unwrap_or(0);
        let mut line = format!(
            "{edge}: {} in {n} zone{}",
            b["state"].as_str().unwrap_or("?"),
            if n == 1 { "" } else { "s" }
        );
        if let (Some(until), Some(secs)) = (b["until"].as_str(), b["expires_in_secs"].as_f64()) {
            line.push_str(&format!(
                " for {} (until {until})",
                humantime::format_duration(std::time::Duration::from_secs(secs.round() as u64))
            ));
        }
        if let Some(r) = b["reason"].as_str() {
            line.push_str(&format!(": {r}"));
        }
        line
    })
}

/// `geosteer load EDGE LOAD --ttl 60s`.
fn push_load(edge: &str, load: f64, ttl: &str, zone: Option<&str>, api: &ApiArgs) -> Result<i32> {
    if !(0.0..=1.0).contains(&load) {
        bail!("load {load} is not within 0..=1");
    }
    let ttl_d = crate::duration::parse(ttl).map_err(|e| anyhow::anyhow!("--ttl: {e}"))?;
    let (base, _) = api_target(api)?;
    let url = edge_url(&base, edge, "load", zone);
    let body = serde_json::json!({ "load": load, "ttl": ttl_d.as_secs_f64() });
    let edge = edge.to_owned();
    mutate(api, reqwest::Method::PUT, &url, body, move |b| {
        let n = b["matched"].as_u64().unwrap_or(0);
        format!(
            "{edge}: load {} for {} in {n} zone{}",
            b["load"],
            humantime::format_duration(ttl_d),
            if n == 1 { "" } else { "s" }
        )
    })
}

/// `geosteer reload`: exit 0 when the new files were swapped in, 1 when the
/// server rejected them (and kept serving), 2 when it can't be reached.
fn reload(args: ApiArgs) -> Result<i32> {
    let (base, token) = api_target(&args)?;
    let client = http_client()?;
    let url = format!("{base}/api/reload");
    let mut req = client.post(&url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let (code, body) = block_on(async {
        let resp = req.send().await.with_context(|| format!("POST {url}"))?;
        let code = resp.status();
        let body: serde_json::Value = resp
            .json()
            .await
            .with_context(|| format!("POST {url}: HTTP {code}, not JSON"))?;
        anyhow::Ok((code, body))
    })??;
    if body["ok"] == true {
        println!("reloaded: generation {}", body["generation"]);
        return Ok(0);
    }
    if let Some(errs) = body["errors"].as_array() {
        println!("reload rejected; the server keeps serving its last good state:");
        for e in errs {
            println!("{}", e.as_str().unwrap_or_default());
        }
        return Ok(1);
    }
    bail!(
        "POST {url}: HTTP {code}: {}",
        body["error"].as_str().unwrap_or("unexpected answer")
    )
}

/// The key directory: `--dir`, else the config's `dnssec.keys`, else `keys`.
fn key_dir(dir: Option<PathBuf>, config: &std::path::Path) -> Result<PathBuf> {
    if let Some(d) = dir {
        return Ok(d);
    }
    if config.exists() {
        let cfg = ServerConfig::load(config)?;
        if let Some(d) = cfg.dnssec {
            return Ok(d.keys);
        }
    }
    Ok(PathBuf::from("keys"))
}

fn dnssec(cmd: DnssecCommand) -> Result<i32> {
    match cmd {
        DnssecCommand::Keygen {
            zone,
            ksk,
            alg,
            dir,
            config,
        } => {
            let dir = key_dir(dir, &config)?;
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let path =
                crate::dnssec::keys::generate(&dir, &zone, ksk, alg, crate::clock::unix_now())?;
            // Like dnssec-keygen: the base name on stdout, for scripts.
            println!("{}", path.with_extension("").display());
            Ok(0)
        }
        DnssecCommand::Ds { zone, dir, config } => {
            let dir = key_dir(dir, &config)?;
            let apex = crate::dnssec::parse_name(&zone).map_err(anyhow::Error::msg)?;
            let signer = crate::dnssec::ZoneSigner::load(
                &dir,
                &apex,
                Default::default(),
                3600,
                crate::clock::unix_now(),
            )
            .map_err(|errs| {
                anyhow::anyhow!(
                    "{}",
                    errs.iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            })?;
            let Some(signer) = signer else {
                bail!("no keys for {zone} in {}", dir.display());
            };
            for line in signer.ds_text() {
                println!("{line}");
            }
            Ok(0)
        }
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
