//! End to end through a real resolver: Unbound with its ECS module
//! (`subnetcache`) in front of geosteer. Clients on different continents
//! must each get their own nearest edge through Unbound's cache, a repeat
//! must come from that cache, and a client that sends no ECS must be
//! located by the address Unbound derives from its source. Together this
//! shows the ECS scope geosteer returns is right: Unbound caches per /24
//! and never hands one continent's answer to another.

use crate::support;

use std::time::Duration;

use support::server::Fixture;
use support::tools::need_tools;
use support::wait::until_true;

/// Unbound with subnetcache (no validator) in front of geosteer.
struct Unbound(support::unbound::Unbound);

impl Unbound {
    fn start(dir: &std::path::Path, authority: u16) -> Unbound {
        Unbound::start_with(dir, authority, 24)
    }

    /// Unbound sending ECS of at most `max_v4` bits for IPv4 clients.
    fn start_with(dir: &std::path::Path, authority: u16, max_v4: u8) -> Unbound {
        let server = format!(
            r#"    module-config: "subnetcache iterator"
    max-client-subnet-ipv4: {max_v4}
    # Unbound's own queries come from another /24 than its client's, so
    # geosteer can only place the plain client by the ECS Unbound derives.
    outgoing-interface: 127.0.1.1
"#
        );
        // Ready when it answers for the zone.
        Unbound(support::unbound::Unbound::start(
            dir,
            authority,
            &server,
            "198.51.100.10",
        ))
    }

    /// dig against Unbound (from 127.0.0.1); None if dig failed.
    fn dig(&self, args: &[&str]) -> Option<String> {
        let mut all = vec!["+noall", "+answer", "+comments"];
        all.extend_from_slice(args);
        let out = self.0.dig(&all);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// (addresses, TTL) of the A answer for `name`, with `+subnet=` if given.
    fn a(&self, name: &str, subnet: Option<&str>) -> (Vec<String>, u32) {
        let sub = subnet.map(|s| format!("+subnet={s}"));
        let mut args = vec!["+time=3", "+tries=1", name, "A"];
        if let Some(s) = &sub {
            args.insert(0, s);
        }
        let out = self
            .dig(&args)
            .unwrap_or_else(|| panic!("dig via unbound failed for {name} {subnet:?}"));
        let mut addrs = Vec::new();
        let mut ttl = u32::MAX;
        for l in out
            .lines()
            .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() >= 5 && f[3] == "A" {
                ttl = ttl.min(f[1].parse().unwrap());
                addrs.push(f[4].to_string());
            }
        }
        assert!(
            !addrs.is_empty(),
            "no A answer for {name} {subnet:?}:\n{out}"
        );
        addrs.sort();
        (addrs, ttl)
    }
}

#[test]
fn unbound_subnetcache_gives_each_continent_its_edge_and_caches_per_scope() {
    if !need_tools(&["unbound", "dig"]) {
        return;
    }
    // The client's loopback /24 is placed in Sydney; Unbound's outgoing
    // address (127.0.1.1) stays unlocated, which would get London.
    let fx = Fixture::new("  127.0.0.0/24: [-33.87, 151.21]\n", "");
    let gs = fx.start();
    let ub = Unbound::start(fx.dir.path(), gs.udp.port());

    // (client subnet, another address in the same /24, www's nearest edge)
    let clients = [
        ("8.8.8.0/24", "8.8.8.77/32", "198.51.100.20"), // Mountain View → San Jose
        ("77.88.8.0/24", "77.88.8.200/32", "192.0.2.20"), // Moscow → Frankfurt
        ("114.114.114.0/24", "114.114.114.9/32", "203.0.113.10"), // Nanjing → Tokyo
    ];
    let mut first_ttl = Vec::new();
    for (subnet, _, edge) in clients {
        let before = gs.queries();
        let (addrs, ttl) = ub.a("www.cdn.example", Some(subnet));
        assert_eq!(addrs, [edge], "{subnet} through unbound");
        assert!(
            gs.queries() > before,
            "{subnet}: unbound did not ask geosteer (stale cache?)"
        );
        first_ttl.push(ttl);
    }
    assert!(
        gs.metrics.sum("geosteer_ecs_queries_total") >= 3,
        "unbound did not send ECS to geosteer"
    );

    // Unbound's clock ticks in whole seconds: wait for every cached
    // entry's TTL to count down (these repeats are cache hits).
    let asked = gs.queries();
    until_true(
        "Unbound's cached TTLs count down",
        Duration::from_secs(10),
        || {
            clients
                .iter()
                .zip(&first_ttl)
                .all(|((subnet, _, _), ttl0)| ub.a("www.cdn.example", Some(subnet)).1 < *ttl0)
        },
    );
    for ((subnet, same24, edge), ttl0) in clients.iter().zip(&first_ttl) {
        let (addrs, ttl) = ub.a("www.cdn.example", Some(subnet));
        assert_eq!(addrs, [*edge], "{subnet} repeat");
        assert!(
            ttl < *ttl0,
            "{subnet}: TTL {ttl} not below {ttl0}: not from cache"
        );
        // Another host in the same /24 is covered by the scope-/24 entry.
        let (addrs, _) = ub.a("www.cdn.example", Some(same24));
        assert_eq!(addrs, [*edge], "{same24} within the cached /24");
    }
    assert_eq!(
        gs.queries(),
        asked,
        "repeat queries reached geosteer instead of Unbound's cache"
    );

    // No ECS from the client: Unbound sends 127.0.0.0/24 on its behalf.
    let ecs_before = gs.metrics.sum("geosteer_ecs_queries_total");
    let (addrs, _) = ub.a("www.cdn.example", None);
    assert_eq!(
        addrs,
        ["203.0.113.30"],
        "client without ECS, located by its source (Sydney)"
    );
    assert!(
        gs.metrics.sum("geosteer_ecs_queries_total") > ecs_before,
        "unbound sent no ECS for the plain client"
    );
    // ...and that answer did not leak into the other continents' entries.
    for (subnet, _, edge) in clients {
        assert_eq!(
            ub.a("www.cdn.example", Some(subnet)).0,
            [edge],
            "{subnet} after the plain client"
        );
    }
}

/// RTT prefixes narrower (77.88.8.128/25 inside Moscow's /24) and wider
/// (114.114.0.0/16 around Nanjing's /24) than the GeoIP network, through
/// Unbound's subnet cache: every client gets what it gets asking geosteer
/// directly, and cached entries never cover a client another row decides.
#[test]
fn unbound_subnetcache_with_rtt_prefixes() {
    if !need_tools(&["unbound", "dig"]) {
        return;
    }
    let fx = Fixture::new("", "");
    std::fs::write(
        fx.dir.path().join("zones/cdn.example.rtt.csv"),
        "client,edge,rtt_ms,samples\n\
         77.88.8.128/25,sjc,5,100\n77.88.8.128/25,fra,30,100\n\
         114.114.0.0/16,sin,20,100\n114.114.0.0/16,nrt,35,100\n",
    )
    .unwrap();
    let gs = fx.start();
    // /32 sources, so the /25 row can be told apart.
    let ub = Unbound::start_with(fx.dir.path(), gs.udp.port(), 32);
    const SJC: &str = "198.51.100.20";
    const FRA: &str = "192.0.2.20";
    const SIN: &str = "203.0.113.20";
    const IAD: &str = "198.51.100.10";
    // (client, edge, another client the cached entry must cover)
    let rows = [
        ("77.88.8.200/32", SJC, "77.88.8.201/32"), // in the /25: RTT
        ("77.88.8.7/32", FRA, "77.88.8.8/32"),     // beside it: distance
        ("114.114.114.9/32", SIN, "114.114.114.10/32"), // /16 row, /24 GeoIP
        ("198.18.3.1/32", IAD, "198.18.3.2/32"),   // Ashburn: no RTT rows
    ];
    for (client, edge, _) in rows {
        let before = gs.queries();
        assert_eq!(ub.a("www.cdn.example", Some(client)).0, [edge], "{client}");
        assert!(gs.queries() > before, "{client}: not asked (stale cache?)");
    }
    let asked = gs.queries();
    for (client, edge, neighbour) in rows {
        assert_eq!(
            ub.a("www.cdn.example", Some(client)).0,
            [edge],
            "{client} repeat"
        );
        assert_eq!(
            ub.a("www.cdn.example", Some(neighbour)).0,
            [edge],
            "{neighbour}, covered by {client}'s entry"
        );
    }
    assert_eq!(
        gs.queries(),
        asked,
        "repeats and neighbours must come from the cache"
    );
    // A client in the /25 after its neighbour outside was cached, and the
    // other way round: each still gets its own edge.
    assert_eq!(ub.a("www.cdn.example", Some("77.88.8.129/32")).0, [SJC]);
    assert_eq!(ub.a("www.cdn.example", Some("77.88.8.127/32")).0, [FRA]);
}
