//! Zone transfers, NOTIFY and TSIG: what makes geosteer a primary or a
//! secondary in an existing DNS estate. Beside the query path, never on
//! it: the answer core hands over (`Summary::deferred`) only the messages
//! that are not plain queries: NOTIFY, AXFR/IXFR, and anything carrying a
//! TSIG RR. [`Estate::answer`] takes them.
//!
//! - Out (primary): AXFR, and IXFR answered as AXFR (no journal, RFC 1995
//!   §4), over TCP only, to clients `transfer.allow` lets in, with the
//!   key it names; each message TSIG-signed. What is sent is the zone's
//!   [`image`]: steered hosts as an unlocated client gets them with every
//!   edge up, signatures and an NSEC chain for a signed zone. Its serial
//!   ([`serial`]) moves when that content does, and [`notify`] tells
//!   `transfer.notify` (retrying until answered).
//! - In (secondary, [`secondary`]): zones pulled from primaries on their
//!   SOA timers or at once on NOTIFY, IXFR applied when offered, AXFR
//!   otherwise, TSIG checked; a good copy is written to the zones
//!   directory and loaded like any zone file (its pools file applies), a
//!   broken transfer leaves the last good copy serving.
//! - TSIG-signed plain queries (a secondary's SOA check) are answered by
//!   the answer core and the answer signed.

pub mod image;
pub mod notify;
pub mod out;
pub mod secondary;
pub mod serial;

mod client;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::clock::unix_now;
use crate::config::xfr::XfrConfig;
use crate::net::Transport;
use crate::snapshot::{Snapshot, Zone};
use crate::tsig::{self, Checked, Key, Signer};
use crate::wire::{self, HEADER, OPCODE_NOTIFY, TYPE_AXFR, TYPE_IXFR, TYPE_SOA};

/// Zone transfers running at once, at most; more are answered SERVFAIL
/// (the secondary retries), so a burst of secondaries cannot take every
/// blocking thread.
const MAX_TRANSFERS: usize = 16;

/// What a deferred message gets.
pub enum Deferred {
    /// Nothing (a response sent to us, a message too short to answer).
    Drop,
    /// One message, this long, in the caller's buffer.
    One(usize),
    /// A zone transfer: the messages, in order (TCP only).
    Stream(tokio::sync::mpsc::Receiver<Vec<u8>>),
}

/// Transfers out, NOTIFY in, TSIG: the handler of deferred messages.
pub struct Estate {
    cfg: Arc<XfrConfig>,
    /// Wakes a secondary zone's refresh (NOTIFY), by lowercased apex.
    wake: HashMap<Box<[u8]>, Arc<tokio::sync::Notify>>,
    running: Arc<AtomicUsize>,
    images: Arc<Images>,
}

/// The image last sent of each zone, by lowercased apex, while the
/// snapshot still serves that very zone: secondaries that transfer after
/// one NOTIFY cost one build.
#[derive(Default)]
struct Images(Mutex<HashMap<Box<[u8]>, Sent>>);

/// A zone (as long as it lives) and its image.
type Sent = (Weak<Zone>, Arc<image::Image>);

impl Images {
    fn get(&self, zone: &Arc<Zone>) -> Arc<image::Image> {
        let apex = &zone.tree.apex_lower;
        let cached = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(apex)
            .and_then(|(z, img)| (z.as_ptr() == Arc::as_ptr(zone)).then(|| img.clone()));
        if let Some(img) = cached {
            return img;
        }
        let img = image::build(zone);
        let img = Arc::new(match &zone.dnssec {
            Some(s) => image::sign(&img, s, zone.tree.neg_ttl),
            None => img,
        });
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Images of zones no snapshot serves any more go.
        map.retain(|_, (z, _)| z.strong_count() > 0);
        map.insert(apex.clone(), (Arc::downgrade(zone), img.clone()));
        img
    }
}

/// RFC 1035/2136 rcodes used here.
const NOERROR: u8 = 0;
const FORMERR: u8 = 1;
const SERVFAIL: u8 = 2;
const NOTIMP: u8 = 4;
const REFUSED: u8 = 5;
const NOTAUTH: u8 = 9;

/// The parts of a deferred request the handler reads.
struct Request<'a> {
    id: u16,
    flags: u16,
    opcode: u16,
    /// The question as sent (name, type, class).
    question: &'a [u8],
    /// Lowercased question name.
    lname: Vec<u8>,
    qtype: u16,
}

fn parse(msg: &[u8]) -> Option<Request<'_>> {
    let qd = u16::from_be_bytes([msg[4], msg[5]]);
    if qd != 1 {
        return None;
    }
    let end = HEADER + wire::name_len(msg.get(HEADER..)?)?;
    let question = msg.get(HEADER..end + 4)?;
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    Some(Request {
        id: u16::from_be_bytes([msg[0], msg[1]]),
        flags,
        opcode: (flags >> 11) & 0xF,
        lname: msg[HEADER..end]
            .iter()
            .map(u8::to_ascii_lowercase)
            .collect(),
        qtype: u16::from_be_bytes([msg[end], msg[end + 1]]),
        question,
    })
}

/// Header and question of an answer to `req` with `rcode` (AA for the
/// transfer and NOTIFY answers we are authoritative for).
fn head(out: &mut [u8], req: &Request<'_>, rcode: u8, aa: bool) -> Option<usize> {
    let len = HEADER + req.question.len();
    let b = out.get_mut(..len)?;
    b[0..2].copy_from_slice(&req.id.to_be_bytes());
    let flags = 0x8000 | (req.flags & 0x7900) | if aa { 0x0400 } else { 0 } | u16::from(rcode);
    b[2..4].copy_from_slice(&flags.to_be_bytes());
    b[4..12].copy_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    b[HEADER..].copy_from_slice(req.question);
    Some(len)
}

/// An answer with only a header (FORMERR when not even the question reads).
fn bare(out: &mut [u8], msg: &[u8], rcode: u8) -> Option<usize> {
    let b = out.get_mut(..HEADER)?;
    b[0..2].copy_from_slice(&msg[0..2]);
    let flags = 0x8000 | (u16::from_be_bytes([msg[2], msg[3]]) & 0x7900) | u16::from(rcode);
    b[2..4].copy_from_slice(&flags.to_be_bytes());
    b[4..12].fill(0);
    Some(HEADER)
}

/// Counts one outcome of a deferred message.
fn count(what: &'static str, result: &'static str) {
    metrics::counter!("geosteer_xfr_messages_total", "kind" => what, "result" => result)
        .increment(1);
}

impl Estate {
    pub fn new(cfg: &XfrConfig) -> Estate {
        let wake = cfg
            .secondaries
            .iter()
            .map(|s| (s.apex.clone(), Arc::new(tokio::sync::Notify::new())))
            .collect();
        Estate {
            cfg: Arc::new(cfg.clone()),
            wake,
            running: Arc::default(),
            images: Arc::default(),
        }
    }

    /// The handle a secondary zone's refresh task waits on.
    pub fn waker(&self, apex: &[u8]) -> Option<Arc<tokio::sync::Notify>> {
        self.wake.get(apex).cloned()
    }

    /// Whether `ip` with a request signed by `key` may transfer.
    fn allowed(&self, ip: IpAddr, key: Option<&Arc<Key>>) -> bool {
        let ip = ip.to_canonical();
        self.cfg.allow.iter().any(|a| {
            a.net.contains(&ip)
                && match &a.key {
                    None => true,
                    Some(k) => key.is_some_and(|x| x.name == k.name),
                }
        })
    }

    /// Answers a message the answer core deferred: from `client` over
    /// `transport`, into `out` (one message) or as a stream (transfers).
    pub fn answer(
        &self,
        snap: &Snapshot,
        msg: &[u8],
        client: SocketAddr,
        transport: Transport,
        out: &mut [u8],
    ) -> Deferred {
        if msg.len() < HEADER || msg[2] & 0x80 != 0 {
            return Deferred::Drop;
        }
        let now = unix_now();
        let one = |n: Option<usize>| n.map_or(Deferred::Drop, Deferred::One);
        let Some(req) = parse(msg) else {
            count("malformed", "formerr");
            return one(bare(out, msg, FORMERR));
        };
        let (key, request_mac) = match tsig::verify_request(msg, &self.cfg.keys, now) {
            Err(tsig::Malformed) => {
                count("tsig", "formerr");
                return one(head(out, &req, FORMERR, false));
            }
            Ok(Checked::Unsigned) => (None, Vec::new()),
            Ok(Checked::Good { key, request_mac }) => (Some(key), request_mac),
            Ok(Checked::Error { error, key, record }) => {
                let name = tsig::error_name(error);
                tracing::warn!(client = %client, key = %wire::name_to_string(&record.key), "TSIG {name}: request refused");
                metrics::counter!("geosteer_tsig_errors_total", "error" => name).increment(1);
                let Some(len) = head(out, &req, NOTAUTH, false) else {
                    return Deferred::Drop;
                };
                return one(match key {
                    // BADTIME and BADTRUNC answers are signed (§5.2.3),
                    // BADTIME's with our time as Other Data.
                    Some(key) => {
                        let other = if error == tsig::BADTIME {
                            now.to_be_bytes()[2..].to_vec()
                        } else {
                            Vec::new()
                        };
                        let mut s = Signer::response(key, record.mac.clone());
                        s.sign_with(out, len, record.time_signed, error, &other)
                    }
                    None => tsig::append_unsigned(out, len, &record, error),
                });
            }
        };
        let signer = || {
            key.clone()
                .map(|k| Signer::response(k, request_mac.clone()))
        };
        // Signs `out[..len]` when the request was signed.
        let finish = |out: &mut [u8], len: Option<usize>| -> Deferred {
            let Some(len) = len else {
                return Deferred::Drop;
            };
            match signer() {
                Some(mut s) => one(s.sign(out, len, now)),
                None => Deferred::One(len),
            }
        };
        if req.opcode == u16::from(OPCODE_NOTIFY) {
            let rcode = self.notified(&req, client, key.as_ref());
            let len = head(out, &req, rcode, rcode == NOERROR);
            return finish(out, len);
        }
        if req.opcode != 0 {
            let len = head(out, &req, NOTIMP, false);
            return finish(out, len);
        }
        if matches!(req.qtype, TYPE_AXFR | TYPE_IXFR) {
            return self.transfer(
                snap,
                msg,
                &req,
                client,
                transport,
                key,
                request_mac,
                out,
                now,
            );
        }
        // A signed plain query: the answer core answers, we sign.
        let Some(rec) = tsig::find(msg).ok().flatten() else {
            return Deferred::Drop;
        };
        let mut plain = msg[..rec.start].to_vec();
        let ar = u16::from_be_bytes([plain[10], plain[11]]) - 1;
        plain[10..12].copy_from_slice(&ar.to_be_bytes());
        // The original ID is what the client matches the answer by.
        plain[0..2].copy_from_slice(&rec.original_id.to_be_bytes());
        let Some(s) =
            crate::dns::respond_traced(snap, &plain, client.ip(), transport, out, &mut ())
        else {
            return Deferred::Drop;
        };
        if s.deferred {
            return Deferred::Drop;
        }
        count("signed_query", "answered");
        let limit = match transport {
            Transport::Tcp => out.len().min(u16::MAX as usize),
            Transport::Udp => wire::parse_query(&plain)
                .ok()
                .and_then(|q| q.edns)
                .map_or(512, |e| {
                    usize::from(e.udp_size.clamp(512, crate::dns::OUR_UDP_SIZE))
                }),
        };
        let mut signed = finish(out, Some(s.len));
        if let Deferred::One(n) = signed
            && n > limit
        {
            // The signature made it too big: the question alone, TC set.
            let (rcode, aa) = (out[3] & 0x0F, out[2] & 0x04 != 0);
            let len = head(out, &req, rcode, aa);
            out[2] |= 0x02;
            signed = finish(out, len);
        }
        signed
    }

    /// NOTIFY from a primary (RFC 1996): checks it comes from one of the
    /// zone's primaries with its key, then wakes the zone's refresh.
    fn notified(&self, req: &Request<'_>, client: SocketAddr, key: Option<&Arc<Key>>) -> u8 {
        if req.qtype != TYPE_SOA {
            count("notify", "notimp");
            return NOTIMP;
        }
        let Some(zone) = self.cfg.secondaries.iter().find(|s| *s.apex == *req.lname) else {
            count("notify", "notauth");
            return NOTAUTH;
        };
        let ip = client.ip().to_canonical();
        let from_primary = zone.primaries.iter().any(|p| p.ip().to_canonical() == ip);
        let key_ok = match &zone.key {
            None => true,
            Some(k) => key.is_some_and(|x| x.name == k.name),
        };
        if !from_primary || !key_ok {
            tracing::warn!(zone = %zone.zone, client = %client, "NOTIFY refused: not from a primary of the zone with its key");
            count("notify", "refused");
            return REFUSED;
        }
        tracing::info!(zone = %zone.zone, client = %client, "NOTIFY: refreshing");
        count("notify", "accepted");
        if let Some(w) = self.wake.get(&zone.apex) {
            w.notify_one();
        }
        NOERROR
    }

    /// AXFR or IXFR (RFC 5936, RFC 1995).
    #[allow(clippy::too_many_arguments)]
    fn transfer(
        &self,
        snap: &Snapshot,
        msg: &[u8],
        req: &Request<'_>,
        client: SocketAddr,
        transport: Transport,
        key: Option<Arc<Key>>,
        request_mac: Vec<u8>,
        out: &mut [u8],
        now: u64,
    ) -> Deferred {
        let kind = if req.qtype == TYPE_AXFR {
            "axfr"
        } else {
            "ixfr"
        };
        let signer = || {
            key.clone()
                .map(|k| Signer::response(k, request_mac.clone()))
        };
        let rd = req.flags & 0x0100 != 0;
        let single = |out: &mut [u8], rcode: u8, answers: &[image::Rr]| -> Deferred {
            let m = out::single(req.id, req.question, rd, rcode, answers, signer(), now);
            match out.get_mut(..m.len()) {
                Some(b) => {
                    b.copy_from_slice(&m);
                    Deferred::One(m.len())
                }
                None => Deferred::Drop,
            }
        };
        if !self.allowed(client.ip(), key.as_ref()) {
            tracing::warn!(client = %client, zone = %wire::name_to_string(&req.lname), signed = key.is_some(), "{kind} refused by transfer.allow");
            count(kind, "refused");
            return single(out, REFUSED, &[]);
        }
        let Some(zone) = snap.zones.get(&req.lname[..]).cloned() else {
            count(kind, "notauth");
            return single(out, NOTAUTH, &[]);
        };
        let soa = image::Rr {
            owner: zone.tree.apex.clone(),
            rtype: TYPE_SOA,
            ttl: zone.tree.soa().ttl,
            rdata: image::rdata_wire(&zone.tree.soa().rdata[0]),
        };
        let ours = serial::soa_serial(&zone);
        if req.qtype == TYPE_IXFR {
            let theirs = ixfr_serial(msg);
            // Up to date (or newer): our SOA alone. Over UDP the SOA alone
            // tells an older secondary to come back over TCP (§2).
            if transport == Transport::Udp || theirs.is_some_and(|t| !serial::newer(ours, t)) {
                count(kind, "up_to_date");
                return single(out, NOERROR, &[soa]);
            }
        }
        if transport == Transport::Udp {
            // AXFR is TCP only (RFC 5936 §4.2).
            count(kind, "udp_refused");
            return single(out, REFUSED, &[]);
        }
        if self.running.fetch_add(1, Ordering::AcqRel) >= MAX_TRANSFERS {
            self.running.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(client = %client, "{kind}: {MAX_TRANSFERS} transfers already running");
            count(kind, "busy");
            return single(out, SERVFAIL, &[]);
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.running.fetch_sub(1, Ordering::AcqRel);
            return single(out, SERVFAIL, &[]);
        };
        tracing::info!(client = %client, zone = %zone.name, serial = ours, signed = key.is_some(), "{kind} out");
        count(kind, "started");
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let (running, images) = (self.running.clone(), self.images.clone());
        let (id, question, signer) = (req.id, req.question.to_vec(), signer());
        rt.spawn_blocking(move || {
            let img = images.get(&zone);
            let mut p = out::Packer::new(id, &question, rd, signer, now);
            let mut sent = 0usize;
            for rr in img.records.iter().chain(std::iter::once(&img.records[0])) {
                if let Some(m) = p.push(rr) {
                    sent += m.len();
                    if tx.blocking_send(m).is_err() {
                        break;
                    }
                }
            }
            let last = p.finish();
            sent += last.len();
            let _ = tx.blocking_send(last);
            tracing::debug!(zone = %zone.name, records = img.records.len() + 1, bytes = sent, "transfer sent");
            running.fetch_sub(1, Ordering::AcqRel);
        });
        Deferred::Stream(rx)
    }
}

/// The client's serial in an IXFR request: the SOA in its authority
/// section (RFC 1995 §3).
fn ixfr_serial(msg: &[u8]) -> Option<u32> {
    let mut pos = out::records_start(msg)?;
    let an = u16::from_be_bytes([msg[6], msg[7]]);
    let ns = u16::from_be_bytes([msg[8], msg[9]]);
    for i in 0..an + ns {
        let after = client::skip_name(msg, pos)?;
        let rtype = u16::from_be_bytes([*msg.get(after)?, *msg.get(after + 1)?]);
        let len = usize::from(u16::from_be_bytes([
            *msg.get(after + 8)?,
            *msg.get(after + 9)?,
        ]));
        if i >= an && rtype == TYPE_SOA {
            let rd = crate::zone::schema::from_wire(TYPE_SOA, msg, after + 10, len).ok()?;
            let at = image::soa_serial_at(&rd)?;
            return Some(u32::from_be_bytes(rd[at..at + 4].try_into().ok()?));
        }
        pos = after + 10 + len;
    }
    None
}
