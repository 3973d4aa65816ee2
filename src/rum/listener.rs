//! The public RUM listener (`rum.listen`), apart from the admin API:
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/rum.js?host=<name>` | the snippet |
//! | GET | `/rum/config?host=<name>` | a token, the edges to time, the resolver probe name |
//! | POST | `/rum/beacon` | `{"token": ..., "rtt": {"lhr": 23.5}}` → 204 |
//! | GET | `/rum/probe` | 204: where the resolver probe's request lands |
//!
//! It faces the internet: bodies are capped, every client /24 (/56) has a
//! token bucket, tokens bind a beacon to the network that fetched the
//! config and are taken once, and what a beacon says is checked before it
//! reaches the aggregator through a bounded queue (a full queue drops and
//! counts; nothing here waits for the aggregator or touches the DNS path).

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::json;
use smallvec::SmallVec;

use super::cells::{Beacon, MAX_MS};
use super::engine::Rum;
use super::token::TOKEN_TTL;
use super::token::{Claims, Id, Net, TokenError, client_addr};
use crate::clock::unix_now;
use crate::steer::{self, Family, Ranked, Trace};

/// Largest beacon body: a token and a few dozen edges fit in far less.
pub const BODY_LIMIT: usize = 4096;
/// Most edges one beacon may report.
pub const MAX_EDGES: usize = 32;
/// The nearest candidates a config offers (plus one other at random).
pub const NEAREST: usize = 3;

/// Builds the listener's router.
pub fn router(rum: Arc<Rum>) -> Router {
    Router::new()
        .route("/rum.js", get(script))
        .route("/rum/config", get(config).options(preflight))
        .route(
            "/rum/beacon",
            axum::routing::post(beacon).options(preflight),
        )
        .route("/rum/probe", get(probe))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(rum)
}

/// Serves `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    rum: Arc<Rum>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(rum).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// CORS for pages on any origin: the config and the beacon carry no
/// credentials, so `*` is enough.
fn cors(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}

async fn preflight() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    cors(r)
}

fn problem(code: StatusCode, msg: &str) -> Response {
    let mut r = (code, Json(json!({ "error": msg }))).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    cors(r)
}

/// The client's address (X-Forwarded-For from a trusted proxy).
fn requester(rum: &Rum, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    let fwd = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    client_addr(peer.ip(), fwd, &rum.cfg.trust_forwarded)
}

#[derive(Deserialize)]
struct HostParam {
    host: Option<String>,
}

/// A steered host of a zone RUM knows: (zone, host index).
fn find_host(
    snap: &crate::snapshot::Snapshot,
    host: &str,
) -> Option<(Arc<crate::snapshot::Zone>, u32)> {
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    let wire =
        crate::wire::from_hickory(&hickory_proto::rr::Name::from_ascii(format!("{name}.")).ok()?);
    let lower = crate::wire::lowercase(&wire);
    // The DNS path's own closest-enclosing-zone lookup, label by label.
    let apex = &snap.find_zone(&lower)?.tree.apex_lower;
    let zone = snap.zones.get(apex)?.clone();
    let h = zone.tree.nodes.get(&lower)?.host?;
    Some((zone, h))
}

async fn script(State(rum): State<Arc<Rum>>, Query(q): Query<HostParam>) -> Response {
    let Some(host) = q.host.filter(|h| super::snippet::plain_name(h)) else {
        return problem(StatusCode::BAD_REQUEST, "host=<steered name> is needed");
    };
    if find_host(&rum.shared.load(), &host).is_none() {
        return problem(StatusCode::NOT_FOUND, "not a steered host here");
    }
    let mut r = super::snippet::snippet(&host).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/javascript; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    cors(r)
}

/// Records the candidates in metric order, as steering ranks them.
#[derive(Default)]
struct Ranking(Vec<Ranked>);

impl Trace for Ranking {
    const DETAILED: bool = true;
    fn ranked(&mut self, order: &[Ranked]) {
        if self.0.is_empty() {
            self.0 = order.to_vec();
        }
    }
}

async fn config(
    State(rum): State<Arc<Rum>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<HostParam>,
) -> Response {
    let addr = requester(&rum, peer, &headers);
    let net = Net::of(addr);
    if !rum.configs_allowed.allow(net, Instant::now()) {
        rum.metrics.configs_limited.increment(1);
        return problem(StatusCode::TOO_MANY_REQUESTS, "rate limited");
    }
    let Some(host) = q.host else {
        return problem(StatusCode::BAD_REQUEST, "host=<steered name> is needed");
    };
    let snap = rum.shared.load_full();
    let Some((zone, h)) = find_host(&snap, &host) else {
        rum.metrics.configs_unknown.increment(1);
        return problem(StatusCode::NOT_FOUND, "not a steered host here");
    };
    let edges = offer(&snap, &zone, h, addr);
    if edges.is_empty() {
        rum.metrics.configs_unknown.increment(1);
        return problem(StatusCode::NOT_FOUND, "no edge of this host has a rum_url");
    }
    let id: Id = rand::random();
    let token = rum.secret.token(&Claims {
        net,
        expires: unix_now() + TOKEN_TTL,
        id,
        zone: zone.name.clone(),
    });
    let probe = format!(
        "{}.rum.{}",
        rum.secret.probe_label(&id),
        zone.name.trim_end_matches('.')
    );
    rum.metrics.configs_ok.increment(1);
    let body = json!({
        "token": token,
        "edges": edges.iter().map(|(e, u)| json!({"edge": e, "url": u})).collect::<Vec<_>>(),
        "resolver_probe": probe,
    });
    let mut r = Json(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    cors(r)
}

/// The edges a client at `addr` times: the nearest few candidates of the
/// host (as steering ranks them, learned and file RTTs included) that have
/// a `rum_url`, and one other at random so the table keeps learning.
pub fn offer(
    snap: &crate::snapshot::Snapshot,
    zone: &crate::snapshot::Zone,
    host: u32,
    addr: IpAddr,
) -> Vec<(String, String)> {
    let st = &zone.steering;
    let family = if addr.is_ipv4() || crate::geo::normalize(addr).is_ipv4() {
        Family::V4
    } else {
        Family::V6
    };
    let mut ranking = Ranking::default();
    steer::decide(
        st,
        &st.hosts[host as usize],
        snap.geodb.as_deref(),
        steer::Client {
            addr,
            ecs_source: None,
        },
        family,
        &mut ranking,
    );
    let url = |i: steer::EdgeIdx| zone.rum_urls.get(i as usize).and_then(|u| u.as_deref());
    let with_url: Vec<steer::EdgeIdx> = ranking
        .0
        .iter()
        .map(|r| r.idx)
        .filter(|&i| url(i).is_some())
        .collect();
    let mut chosen: Vec<steer::EdgeIdx> = with_url.iter().copied().take(NEAREST).collect();
    let mut others: Vec<steer::EdgeIdx> = with_url[chosen.len()..].to_vec();
    if others.is_empty() {
        others = (0..st.edges.len() as steer::EdgeIdx)
            .filter(|&i| url(i).is_some() && !chosen.contains(&i))
            .collect();
    }
    if !others.is_empty() {
        chosen.push(others[rand::random_range(0..others.len())]);
    }
    chosen
        .into_iter()
        .filter_map(|i| Some((st.edges[i as usize].name.clone(), url(i)?.to_string())))
        .collect()
}

/// A beacon as sent, read in place: the token and edge names borrow the
/// body (owned only when they hold JSON escapes), so a beacon allocates
/// nothing to be parsed.
#[derive(Deserialize)]
struct BeaconBody<'a> {
    #[serde(borrow)]
    token: Cow<'a, str>,
    #[serde(borrow)]
    rtt: Rtts<'a>,
}

/// A beacon's `rtt` object in the order sent, a repeated edge once (the
/// last value, as a map would keep), at most [`MAX_EDGES`] of them.
struct Rtts<'a>(SmallVec<[(Cow<'a, str>, Ms); 8]>);

/// A reported time: a JSON number, or whatever else was sent in its place
/// (counted as out of range, not a bad request).
struct Ms(Option<f64>);

impl<'de: 'a, 'a> Deserialize<'de> for Rtts<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Rtts<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of edge: ms")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Rtts<'a>, M::Error> {
                let mut out: SmallVec<[(Cow<'a, str>, Ms); 8]> = SmallVec::new();
                while let Some((edge, ms)) = m.next_entry::<Cow<'a, str>, Ms>()? {
                    match out.iter().position(|(e, _)| *e == edge) {
                        Some(i) => out[i].1 = ms,
                        None if out.len() == MAX_EDGES => {
                            return Err(serde::de::Error::custom("too many edges"));
                        }
                        None => out.push((edge, ms)),
                    }
                }
                Ok(Rtts(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl<'de> Deserialize<'de> for Ms {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ms;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number of milliseconds")
            }
            fn visit_f64<E>(self, v: f64) -> Result<Ms, E> {
                Ok(Ms(Some(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Ms, E> {
                Ok(Ms(Some(v as f64)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Ms, E> {
                Ok(Ms(Some(v as f64)))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Ms, E> {
                Ok(Ms(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Ms, E> {
                Ok(Ms(None))
            }
            fn visit_unit<E>(self) -> Result<Ms, E> {
                Ok(Ms(None))
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut s: S) -> Result<Ms, S::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Ms(None))
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Ms, M::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Ms(None))
            }
        }
        d.deserialize_any(V)
    }
}

async fn beacon(
    State(rum): State<Arc<Rum>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    method: Method,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    debug_assert_eq!(method, Method::POST);
    let m = &rum.metrics;
    let addr = requester(&rum, peer, &headers);
    let net = Net::of(addr);
    if !rum.beacons_allowed.allow(net, Instant::now()) {
        m.beacons_limited.increment(1);
        return problem(StatusCode::TOO_MANY_REQUESTS, "rate limited");
    }
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            m.beacons_bad.increment(1);
            return problem(e.status(), "body too large or unreadable");
        }
    };
    let Ok(b) = serde_json::from_slice::<BeaconBody>(&body) else {
        m.beacons_bad.increment(1);
        return problem(
            StatusCode::BAD_REQUEST,
            "want {\"token\": ..., \"rtt\": {edge: ms}}",
        );
    };
    let now = unix_now();
    let claims = match rum.secret.verify_token(&b.token, net, now) {
        Ok(c) => c,
        Err(e) => {
            m.beacons_forbidden.increment(1);
            let why = match e {
                TokenError::OtherNetwork => "token issued to another network",
                TokenError::Expired => "token expired",
                _ => "bad token",
            };
            return problem(StatusCode::FORBIDDEN, why);
        }
    };
    if !rum.seen.take(claims.id, claims.expires, now) {
        m.beacons_forbidden.increment(1);
        return problem(StatusCode::FORBIDDEN, "token already used");
    }
    // What the zone has now: unknown edges and RTTs out of range are
    // dropped and counted, the rest goes on.
    let snap = rum.shared.load();
    let zone = snap.zone_named(&claims.zone);
    let mut rtt = Vec::with_capacity(b.rtt.0.len());
    for (edge, v) in &b.rtt.0 {
        let Some(ms) =
            v.0.filter(|ms| ms.is_finite() && (0.0..=MAX_MS).contains(ms))
        else {
            m.samples_out_of_range.increment(1);
            continue;
        };
        let known = zone.and_then(|z| z.steering.edges.iter().find(|e| e.name == *edge));
        match known {
            Some(e) => rtt.push((Arc::from(e.name.as_str()), ms as f32)),
            None => m.samples_unknown_edge.increment(1),
        }
    }
    m.samples_accepted.increment(rtt.len() as u64);
    m.beacons_accepted.increment(1);
    if !rtt.is_empty() {
        let beacon = Beacon {
            zone: Arc::from(claims.zone.as_str()),
            net,
            id: claims.id,
            rtt,
            at: now,
        };
        if rum.beacons.try_send(beacon).is_err() {
            m.dropped_beacons.increment(1);
        }
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    cors(r)
}

/// Where the browser's resolver-probe request lands: nothing to say.
async fn probe() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    cors(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parsed = (String, Vec<(String, Option<f64>)>);

    fn parse(body: &str) -> Option<Parsed> {
        let b: BeaconBody = serde_json::from_str(body).ok()?;
        let rtt = b
            .rtt
            .0
            .iter()
            .map(|(e, ms)| (e.to_string(), ms.0))
            .collect();
        Some((b.token.into_owned(), rtt))
    }

    #[test]
    fn beacon_bodies_read_in_place() {
        let (token, rtt) =
            parse(r#"{"token":"a\u0062c","rtt":{"lhr":23.5,"fra":31,"x":"7","y":[1,{}],"z":null,"lhr":9}}"#)
                .unwrap();
        // Escapes are decoded; a repeated edge keeps its last value, in
        // its first place; what is not a number is no time.
        assert_eq!(token, "abc");
        let want = [
            ("lhr", Some(9.0)),
            ("fra", Some(31.0)),
            ("x", None),
            ("y", None),
            ("z", None),
        ];
        let want: Vec<(String, Option<f64>)> =
            want.iter().map(|(e, m)| (e.to_string(), *m)).collect();
        assert_eq!(rtt, want);
        let many: Vec<String> = (0..=MAX_EDGES).map(|i| format!(r#""e{i}":1"#)).collect();
        assert!(
            parse(&format!(
                r#"{{"token":"t","rtt":{{{}}}}}"#,
                many[1..].join(",")
            ))
            .is_some()
        );
        assert!(parse(&format!(r#"{{"token":"t","rtt":{{{}}}}}"#, many.join(","))).is_none());
        for junk in [
            r#"{"token":"t"}"#,
            r#"{"token":1,"rtt":{}}"#,
            r#"{"token":"t","rtt":[]}"#,
            "[]",
            "{",
        ] {
            assert!(parse(junk).is_none(), "{junk}");
        }
    }
}
