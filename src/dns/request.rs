//! One query as the answer core sees it, built once per packet: the parsed
//! message, the transport it came over, how large the response may be,
//! what our OPT record adds (NSID, a cookie bound to the source address),
//! and which client steering locates. Every later step reads it instead of
//! taking these one by one.

use std::net::{IpAddr, Ipv4Addr};

use super::opt::OptExtra;
use crate::net::Transport;
use crate::protocol::Protocol;
use crate::steer::Client;
use crate::wire::Query;

/// The UDP payload size we advertise and never exceed (DNS flag day 2020).
pub const OUR_UDP_SIZE: u16 = 1232;
/// Plain DNS over UDP without EDNS (RFC 1035 §4.2.1).
pub(crate) const CLASSIC_UDP: usize = 512;

/// A query that passed the mandatory checks' parse, with everything about
/// how it is to be answered.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The packet's header, question and EDNS.
    pub query: &'a Query<'a>,
    pub transport: Transport,
    /// The largest response the transport and the query's EDNS allow.
    pub max: usize,
    /// What our OPT record adds besides ECS: NSID if asked, our cookie
    /// (and whether the client's server cookie was one of ours).
    pub extra: OptExtra<'a>,
    /// Who steering locates: the ECS address when the query has a non-zero
    /// source prefix (RFC 7871 §7.1.2), else the source.
    pub client: Client,
}

impl<'a> Request<'a> {
    /// The request for `query`, which came from `source` over `transport`,
    /// answered into a buffer of `buf` bytes. The source is the address
    /// the packet came from (a transport that learns the real client
    /// another way, from a PROXY header, hands that over instead): the
    /// cookie is bound to it and, without ECS, it is the client.
    #[inline(always)]
    pub fn new(
        protocol: &'a Protocol,
        query: &'a Query<'a>,
        source: IpAddr,
        transport: Transport,
        buf: usize,
    ) -> Request<'a> {
        // NSID and cookie, the same whichever path answers.
        let extra = match &query.edns {
            Some(e) => OptExtra::for_query(protocol, e, source),
            None => OptExtra::default(),
        };
        Request {
            query,
            transport,
            max: response_max(query, transport, buf),
            extra,
            client: client_of(query, source),
        }
    }

    /// A request made up for rendering an answer ahead of time (the
    /// pre-rendered tables): over UDP, from nowhere, without NSID or
    /// cookie, into a buffer of `max` bytes.
    pub fn ahead(query: &'a Query<'a>, max: usize) -> Request<'a> {
        let nowhere = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        Request {
            query,
            transport: Transport::Udp,
            max,
            extra: OptExtra::default(),
            client: Client {
                addr: nowhere,
                ecs_source: None,
            },
        }
    }
}

/// The largest response the transport and the query's EDNS allow.
#[inline(always)]
fn response_max(q: &Query<'_>, transport: Transport, buf: usize) -> usize {
    match transport {
        Transport::Tcp => buf.min(65_535),
        Transport::Udp => match q.edns {
            Some(e) => (e.udp_size.clamp(CLASSIC_UDP as u16, OUR_UDP_SIZE)) as usize,
            None => CLASSIC_UDP,
        },
    }
}

#[inline(always)]
fn client_of(q: &Query<'_>, source: IpAddr) -> Client {
    match q.edns.and_then(|e| e.ecs) {
        Some(ecs) if ecs.source_prefix > 0 => Client {
            addr: ecs.addr,
            ecs_source: Some(ecs.source_prefix),
        },
        _ => Client {
            addr: source,
            ecs_source: None,
        },
    }
}
