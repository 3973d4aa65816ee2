//! HTTP listener: Prometheus metrics, the admin API, and the server's own
//! liveness. Beside the query path, never in it.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/metrics` | Prometheus text |
//! | GET | `/healthz` | 200 when a snapshot is serving |
//! | GET | `/api/status` | version, uptime, files, DB, last reload, zones (with DNSSEC keys and DS) |
//! | GET | `/api/edges` | every edge's health |
//! | GET | `/api/fleet` | instances, liveness, verdicts per edge, drift |
//! | POST | `/api/edges/{name}/admin` | `{"state": "drain", "for": "2h", "reason": "fibre cut"}` (auth) |
//! | PUT | `/api/edges/{name}/load` | `{"load": 0.93, "ttl": "60s"}` or `"ttl": 60` (auth) |
//! | POST | `/api/reload` | rebuild from files now (auth) |
//! | GET | `/` | the status page ([`crate::status`]) |
//! | GET | `/api/view` | what the status page draws: edges, rates, per-country answers |
//! | GET | `/api/whatif` | per-country answers with `down=`/`drain=` edges, changing nothing |
//! | GET | `/api/explain` | `geosteer explain` for one client |
//! | GET | `/api/rum` | RUM: a summary, or `?client=<cidr>` / `?resolver=<ip>` ([`crate::rum::api`]) |
//! | GET | `/api/rum/export?zone=` | the learned table as `rtt.csv` |

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::json;

use crate::health::AdminState;
use crate::reload::Reloader;

/// Largest request body we read: these are tiny JSON documents.
const BODY_LIMIT: usize = 16 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct Api {
    pub reloader: Arc<Reloader>,
    pub prometheus: PrometheusHandle,
    pub started: Instant,
    /// Required as `Authorization: Bearer <token>` on mutating endpoints
    /// when set.
    pub token: Option<String>,
    /// Per-edge answer rates for the status page, sampled by [`serve`].
    pub rates: Arc<crate::status::Rates>,
    /// The etcd link, when `fleet:` is configured.
    pub fleet: Option<Arc<crate::fleet::Fleet>>,
    /// Steering from real users, when `rum:` is configured.
    pub rum: Option<Arc<crate::rum::Rum>>,
}

/// Builds the router.
pub fn router(api: Api) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/api/status", get(status))
        .route("/api/edges", get(edges))
        .route("/api/fleet", get(fleet))
        .route("/api/edges/{name}/admin", post(set_admin))
        .route("/api/edges/{name}/load", put(feed_load))
        .route("/api/reload", post(reload))
        .route("/", get(status_page))
        .route("/api/view", get(view))
        .route("/api/whatif", get(whatif))
        .route("/api/explain", get(explain))
        .route("/api/rum", get(rum))
        .route("/api/rum/export", get(rum_export))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(api)
}

/// The token mutating endpoints need: from the config, else the
/// `GEOSTEER_HTTP_TOKEN` environment variable. A listener off loopback
/// without one is refused at start-up, so the admin API is never open.
pub fn resolve_token(addr: SocketAddr, configured: Option<&str>) -> Result<Option<String>, String> {
    let token = configured
        .map(str::to_owned)
        .or_else(|| std::env::var("GEOSTEER_HTTP_TOKEN").ok())
        .filter(|t| !t.is_empty());
    if token.is_none() && !addr.ip().is_loopback() {
        return Err(format!(
            "http: {addr} is not a loopback address, so the admin API needs a token (http_token or GEOSTEER_HTTP_TOKEN)"
        ));
    }
    Ok(token)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    api: Api,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The status page's answers/s: the edge counters sampled once a second.
    let sampler = {
        let api = api.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if api.rates.wanted() {
                    api.rates.sample(&api.prometheus.render());
                }
            }
        })
    };
    let r = axum::serve(listener, router(api))
        .with_graceful_shutdown(shutdown)
        .await;
    sampler.abort();
    r
}

fn error(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(json!({ "error": msg.into() }))).into_response()
}

fn authorized(api: &Api, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(token) = &api.token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Compare without an early exit, so timing doesn't leak the token.
    let ok = given.is_some_and(|g| {
        g.len() == token.len()
            && g.bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    });
    if ok {
        Ok(())
    } else {
        Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token",
        )))
    }
}

async fn metrics(State(api): State<Api>) -> impl IntoResponse {
    let snap = api.reloader.shared().load();
    if let Ok(age) = snap.built_at.elapsed() {
        metrics::gauge!("geosteer_snapshot_age_seconds").set(age.as_secs_f64());
    }
    crate::metrics::publish_dnssec();
    crate::metrics::publish_query_counts();
    let mut text = api.prometheus.render();
    // The series whose set follows the state, written from it now.
    crate::metrics::render_edges(&mut text, &api.reloader.registry.snapshot());
    let mut zones: Vec<_> = snap.zones.values().collect();
    zones.sort_by(|a, b| a.name.cmp(&b.name));
    crate::metrics::render_hosts(
        &mut text,
        zones.iter().map(|z| &z.counters),
        api.reloader.cfg.metrics.top_hosts,
    );
    drop(snap);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

async fn healthz(State(api): State<Api>) -> impl IntoResponse {
    let snap = api.reloader.shared().load();
    (
        StatusCode::OK,
        format!("ok generation={}\n", snap.generation),
    )
}

async fn status(State(api): State<Api>) -> impl IntoResponse {
    let snap = api.reloader.shared().load();
    let cfg = &api.reloader.cfg;
    let reload = api.reloader.status();
    // A zone whose files do not load now: why, per zone.
    let load_errors = |file: &std::path::Path| {
        reload
            .zones
            .iter()
            .find(|f| f.zone_file == file)
            .map(|f| &f.errors)
    };
    let mut zones: Vec<_> = snap
        .zones
        .values()
        .map(|z| {
            json!({
                "name": z.name,
                "loaded": true,
                "zone_file": z.zone_file,
                "pools_file": z.pools_file,
                "names": z.tree.nodes.len(),
                "hosts": z.steering.hosts.iter().map(|h| &h.name).collect::<Vec<_>>(),
                "edges": z.steering.edges.len(),
                // Keys (tag, algorithm, role, state) and the DS; no key material.
                "dnssec": z.dnssec.as_ref().map(|s| s.describe()),
                // Set while the files are broken: this is the last good copy.
                "load_errors": load_errors(&z.zone_file),
            })
        })
        .chain(snap.unloaded.values().map(|u| {
            json!({
                "name": u.name,
                "loaded": false,
                "awaiting_transfer": u.awaiting_transfer,
                "zone_file": u.zone_file,
                "load_errors": load_errors(&u.zone_file),
            })
        }))
        .collect();
    zones.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let db = snap.geodb.as_ref().map(|db| {
        let i = db.info();
        json!({
            "path": cfg.geodb,
            "database_type": i.database_type,
            "build_epoch": i.build_epoch,
            "build_date": humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(i.build_epoch)
            )
            .to_string(),
            "file_size": i.file_size,
            "node_count": i.node_count,
            "ip_version": i.ip_version,
        })
    });
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": api.started.elapsed().as_secs(),
        "config": cfg.path,
        "zones_dir": cfg.zones,
        "geodb": db,
        "generation": snap.generation,
        "last_reload": reload,
        "zones": zones,
        "dnssec": crate::metrics::dnssec_summary(),
        // Every override in force, with its reason and expiry (edges not
        // configured now included: they apply when the edge comes back).
        "overrides": api.reloader.registry.overrides_status(),
        "fleet": api.fleet.as_ref().map(|f| f.status_json()),
    }))
}

async fn fleet(State(api): State<Api>) -> Response {
    match &api.fleet {
        Some(f) => Json(f.report()).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "fleet is off: no `fleet:` section in the config",
        ),
    }
}

async fn edges(State(api): State<Api>) -> impl IntoResponse {
    Json(api.reloader.registry.snapshot())
}

#[derive(Deserialize)]
struct ZoneParam {
    zone: Option<String>,
}

/// `cdn.example` and `cdn.example.` name the same zone.
fn zone_key(z: Option<String>) -> Option<String> {
    z.map(|z| if z.ends_with('.') { z } else { format!("{z}.") })
}

/// A mutating call's prelude: the token, then a JSON body. Whatever the
/// Content-Type says, or without one: `curl -d` sends its form type by
/// default, and the body is what matters. A body that is not the JSON
/// wanted gets a 400 saying what is, with `example`.
fn accept<T: serde::de::DeserializeOwned>(
    api: &Api,
    headers: &HeaderMap,
    body: &[u8],
    example: &str,
) -> Result<T, Box<Response>> {
    authorized(api, headers)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("the request has no body; send JSON like {example}"),
        )));
    }
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("body: {e}; send JSON like {example}"),
        ))
    })
}

/// The registry's answer as HTTP: an unknown edge is a 404.
fn registry_reply(
    r: Result<usize, crate::health::HealthError>,
    ok: impl FnOnce(usize) -> serde_json::Value,
    other: StatusCode,
) -> Response {
    match r {
        Ok(n) => Json(ok(n)).into_response(),
        Err(e @ crate::health::HealthError::UnknownEdge { .. }) => {
            error(StatusCode::NOT_FOUND, e.to_string())
        }
        Err(e) => error(other, e.to_string()),
    }
}

/// Longest override reason kept (it is shown on the page and in metrics).
const MAX_REASON: usize = 200;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminBody {
    state: AdminState,
    /// Why, for whoever looks at the edge next.
    #[serde(default)]
    reason: Option<String>,
    /// How long until the override lifts itself (`"2h"` or seconds).
    #[serde(default, rename = "for", with = "crate::duration::option")]
    for_: Option<std::time::Duration>,
}

async fn set_admin(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<ZoneParam>,
    body: axum::body::Bytes,
) -> Response {
    let body: AdminBody = match accept(
        &api,
        &headers,
        &body,
        r#"{"state": "drain", "for": "2h", "reason": "fibre cut"}"#,
    ) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    if body.state == AdminState::Auto && (body.for_.is_some() || body.reason.is_some()) {
        return error(
            StatusCode::BAD_REQUEST,
            "auto lifts the override; `for` and `reason` go with up, down or drain",
        );
    }
    if body.for_.is_some_and(|d| d.is_zero()) {
        return error(StatusCode::BAD_REQUEST, "for: must be longer than 0s");
    }
    if let Some(r) = &body.reason
        && (r.len() > MAX_REASON || r.chars().any(char::is_control))
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!("reason: one line of at most {MAX_REASON} bytes"),
        );
    }
    let note = crate::health::AdminNote::new(body.reason, body.for_);
    let r = api.reloader.registry.set_admin_with(
        zone_key(q.zone).as_deref(),
        &name,
        body.state,
        note.clone(),
    );
    let now = crate::health::unix_ms();
    registry_reply(
        r,
        |n| {
            json!({
                "edge": name,
                "state": body.state,
                "matched": n,
                "reason": note.reason,
                "until": note.until_rfc3339(),
                "expires_in_secs": note.expires_in_secs(now),
            })
        },
        // Only the state file can fail here.
        StatusCode::INTERNAL_SERVER_ERROR,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadBody {
    load: f64,
    /// How long the reading counts (`"60s"` or seconds).
    #[serde(with = "crate::duration")]
    ttl: std::time::Duration,
}

async fn feed_load(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<ZoneParam>,
    body: axum::body::Bytes,
) -> Response {
    let body: LoadBody = match accept(&api, &headers, &body, r#"{"load": 0.93, "ttl": "60s"}"#) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let ttl = body.ttl;
    if ttl.is_zero() {
        return error(StatusCode::BAD_REQUEST, "ttl: must be longer than 0s");
    }
    let r = api
        .reloader
        .registry
        .feed_load(zone_key(q.zone).as_deref(), &name, body.load, ttl);
    registry_reply(
        r,
        |n| json!({ "edge": name, "load": body.load, "ttl_secs": ttl.as_secs_f64(), "matched": n }),
        // An out-of-range load.
        StatusCode::BAD_REQUEST,
    )
}

async fn reload(State(api): State<Api>, headers: HeaderMap) -> Response {
    if let Err(r) = authorized(&api, &headers) {
        return *r;
    }
    let r = api.reloader.clone();
    match tokio::task::spawn_blocking(move || r.reload("api")).await {
        Ok(Ok(generation)) => Json(json!({ "ok": true, "generation": generation })).into_response(),
        Ok(Err(errs)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "ok": false, "errors": errs.0.iter().map(|e| e.to_string()).collect::<Vec<_>>() })),
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The page itself: static, so it is built once; no external resource may
/// load (the CSP forbids it), so it works on an air-gapped host.
async fn status_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'",
            ),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        crate::status::page(),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ViewParams {
    zone: Option<String>,
    host: Option<String>,
    down: Option<String>,
    drain: Option<String>,
}

impl ViewParams {
    fn whatif(&self) -> crate::status::WhatIf {
        crate::status::WhatIf::parse(self.down.as_deref(), self.drain.as_deref())
    }
}

/// Runs a status computation on a blocking thread (it runs `decide` per
/// country, whose per-thread caches belong to the query path's threads).
async fn off_thread(
    api: &Api,
    f: impl FnOnce(&crate::snapshot::Snapshot) -> Result<serde_json::Value, crate::status::StatusError>
    + Send
    + 'static,
) -> Response {
    let snap = api.reloader.shared().load_full();
    match tokio::task::spawn_blocking(move || f(&snap)).await {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Everything the status page draws, in one poll.
async fn view(State(api): State<Api>, Query(q): Query<ViewParams>) -> Response {
    let rates = api.rates.current();
    let reload = api.reloader.status();
    let whatif = q.whatif();
    off_thread(&api, move |snap| {
        let zones: Vec<_> = crate::status::sorted_zones(snap)
            .iter()
            .map(|z| {
                json!({
                    "name": z.name,
                    "hosts": z.steering.hosts.iter().map(|h| &h.name).collect::<Vec<_>>(),
                })
            })
            .collect();
        let edges = crate::status::edges(snap, &rates);
        let (zone, host, countries) =
            match crate::status::pick(snap, q.zone.as_deref(), q.host.as_deref()) {
                Ok((z, h)) => (
                    Some(z.name.clone()),
                    Some(h.name.clone()),
                    Some(crate::status::assign(z, h, &whatif)?),
                ),
                Err(crate::status::StatusError::Empty) => (None, None, None),
                Err(e) => return Err(e),
            };
        Ok(json!({
            "generation": snap.generation,
            "last_reload": reload,
            "zones": zones,
            "zone": zone,
            "host": host,
            "whatif": whatif,
            "edges": edges,
            "countries": countries,
        }))
    })
    .await
}

/// Where each country's clients would go with the named edges down or
/// draining. Changes nothing.
async fn whatif(State(api): State<Api>, Query(q): Query<ViewParams>) -> Response {
    let whatif = q.whatif();
    off_thread(&api, move |snap| {
        let (z, h) = crate::status::pick(snap, q.zone.as_deref(), q.host.as_deref())?;
        let countries = crate::status::assign(z, h, &whatif)?;
        Ok(json!({
            "zone": z.name,
            "host": h.name,
            "down": whatif.down,
            "drain": whatif.drain,
            "countries": countries,
        }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RumParams {
    client: Option<ipnet::IpNet>,
    resolver: Option<std::net::IpAddr>,
    zone: Option<String>,
    host: Option<String>,
}

/// `GET /api/rum`: what RUM learned (see [`crate::rum::api`]).
async fn rum(State(api): State<Api>, Query(q): Query<RumParams>) -> Response {
    let Some(rum) = api.rum.clone() else {
        // The status page asks every few seconds: not an error.
        if q.client.is_none() && q.resolver.is_none() {
            return Json(json!({ "enabled": false })).into_response();
        }
        return error(
            StatusCode::NOT_FOUND,
            "RUM is off: no `rum:` section in the config",
        );
    };
    let snap = api.reloader.shared().load_full();
    let r = tokio::task::spawn_blocking(move || match (q.client, q.resolver) {
        (Some(c), _) => rum.client(c),
        (None, Some(r)) => rum.resolver(r, &snap),
        (None, None) => crate::rum::api::panel(&rum, &snap, q.zone.as_deref(), q.host.as_deref()),
    })
    .await;
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `GET /api/rum/export?zone=`: the learned table as `rtt.csv`.
async fn rum_export(State(api): State<Api>, Query(q): Query<ZoneParam>) -> Response {
    let Some(rum) = &api.rum else {
        return error(
            StatusCode::NOT_FOUND,
            "RUM is off: no `rum:` section in the config",
        );
    };
    let zone = match zone_key(q.zone) {
        Some(z) => z,
        None => {
            let snap = api.reloader.shared().load();
            match snap
                .zones
                .values()
                .filter(|z| !z.steering.edges.is_empty())
                .collect::<Vec<_>>()[..]
            {
                [z] => z.name.clone(),
                _ => return error(StatusCode::BAD_REQUEST, "give zone= (several zones steer)"),
            }
        }
    };
    match rum.export(&zone) {
        Some(csv) => ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("nothing learned for zone {zone}"),
        ),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExplainParams {
    name: String,
    client: Option<std::net::IpAddr>,
    ecs: Option<ipnet::IpNet>,
    #[serde(rename = "type")]
    qtype: Option<String>,
}

/// `geosteer explain` over HTTP: the server's code path for one client.
async fn explain(State(api): State<Api>, Query(q): Query<ExplainParams>) -> Response {
    if q.client.is_none() && q.ecs.is_none() {
        return error(StatusCode::BAD_REQUEST, "give client= or ecs=");
    }
    let snap = api.reloader.shared().load_full();
    let rum = api.rum.clone();
    let r = tokio::task::spawn_blocking(move || {
        crate::explain::explain(
            &snap,
            &q.name,
            q.client,
            q.ecs,
            q.qtype.as_deref().unwrap_or("A"),
            rum.as_deref(),
        )
        .map(|r| r.to_json())
    })
    .await;
    match r {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
