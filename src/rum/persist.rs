//! The state file (`rum.state_file`): this instance's cells (with their
//! kept samples) and resolver links, so what was learned survives a
//! restart. Written whole, periodically and on shutdown, through a
//! temporary file and a rename; a SHA-256 at the end catches a torn or
//! damaged file, which is set aside (`.bad`) rather than overwritten.
//!
//! Other instances' aggregates are not kept: etcd has them.
//!
//! Layout (big-endian): `GSRUM\x01\n\0`, saved-at u64, zones u32 { name,
//! edges u16 { name }, nets u32 { net u64, cells u8 { edge u16, samples
//! u32, kept u8 { ms×4 u16, at u32 } } } }, links u32 { resolver u64,
//! ecs u8 (0 | 4 | 6) [addr 16, prefix u8, at u32], clients u32 { net
//! u64, at u32 } }, SHA-256 of all before. Names are u16 length + bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use sha2::{Digest, Sha256};

use super::cells::{Cell, Link, State, ZoneCells};
use super::token::Net;

const MAGIC: &[u8; 8] = b"GSRUM\x01\n\0";

/// Why the state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: byte {at}: {reason}")]
    Corrupt {
        path: PathBuf,
        at: usize,
        reason: String,
    },
}

/// Serializes this instance's cells and links.
pub fn encode(s: &State, now: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(1 << 16);
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&now.to_be_bytes());
    let zones: Vec<(&String, &ZoneCells)> =
        s.zones.iter().filter(|z| !z.1.nets.is_empty()).collect();
    b.extend_from_slice(&(zones.len() as u32).to_be_bytes());
    for (name, z) in zones {
        put_name(&mut b, name);
        b.extend_from_slice(&(z.edges.len() as u16).to_be_bytes());
        for e in &z.edges {
            put_name(&mut b, e);
        }
        b.extend_from_slice(&(z.nets.len() as u32).to_be_bytes());
        for (net, cells) in &z.nets {
            b.extend_from_slice(&net.bits().to_be_bytes());
            b.push(cells.len().min(255) as u8);
            for c in cells.iter().take(255) {
                b.extend_from_slice(&c.edge.to_be_bytes());
                b.extend_from_slice(&c.samples.to_be_bytes());
                let h = c.history();
                b.push(h.len() as u8);
                for (ms, at) in h {
                    b.extend_from_slice(&((ms * 4.0).round() as u16).to_be_bytes());
                    b.extend_from_slice(&(at.min(u64::from(u32::MAX)) as u32).to_be_bytes());
                }
            }
        }
    }
    b.extend_from_slice(&(s.links.len() as u32).to_be_bytes());
    for (resolver, l) in &s.links {
        b.extend_from_slice(&resolver.bits().to_be_bytes());
        match l.ecs {
            None => b.push(0),
            Some((net, at)) => {
                let (fam, addr) = match net.network() {
                    IpAddr::V4(a) => (4u8, a.to_ipv6_mapped().octets()),
                    IpAddr::V6(a) => (6u8, a.octets()),
                };
                b.push(fam);
                b.extend_from_slice(&addr);
                b.push(net.prefix_len());
                b.extend_from_slice(&at.to_be_bytes());
            }
        }
        b.extend_from_slice(&(l.clients.len() as u32).to_be_bytes());
        for (net, at) in &l.clients {
            b.extend_from_slice(&net.bits().to_be_bytes());
            b.extend_from_slice(&at.to_be_bytes());
        }
    }
    let sum = Sha256::digest(&b);
    b.extend_from_slice(&sum);
    b
}

fn put_name(b: &mut Vec<u8>, s: &str) {
    let s = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    b.extend_from_slice(&(s.len() as u16).to_be_bytes());
    b.extend_from_slice(s);
}

/// A bounds-checked reader over the file's bytes.
struct Rd<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Rd<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], (usize, String)> {
        let s = self
            .b
            .get(self.at..self.at + n)
            .ok_or((self.at, "file ends early".to_string()))?;
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, (usize, String)> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, (usize, String)> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().expect("2")))
    }
    fn u32(&mut self) -> Result<u32, (usize, String)> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn u64(&mut self) -> Result<u64, (usize, String)> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8")))
    }
    fn name(&mut self) -> Result<String, (usize, String)> {
        let at = self.at;
        let n = usize::from(self.u16()?);
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| (at, "a name is not UTF-8".into()))
    }
    fn net(&mut self) -> Result<Net, (usize, String)> {
        let at = self.at;
        Net::from_bits(self.u64()?).ok_or((at, "not a network".into()))
    }
}

/// Reads what [`encode`] wrote into `s` (whose settings it keeps).
pub fn decode(bytes: &[u8], s: &mut State) -> Result<(), (usize, String)> {
    if bytes.len() < MAGIC.len() + 8 + 32 || &bytes[..MAGIC.len()] != MAGIC {
        return Err((0, "not a geosteer RUM state file (version 1)".into()));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body).as_slice() != sum {
        return Err((
            body.len(),
            "checksum mismatch: the file is torn or damaged".into(),
        ));
    }
    let mut r = Rd {
        b: body,
        at: MAGIC.len(),
    };
    let _saved = r.u64()?;
    for _ in 0..r.u32()? {
        let name = r.name()?;
        let mut z = ZoneCells::default();
        let edges = r.u16()?;
        let mut ids = Vec::with_capacity(usize::from(edges));
        for _ in 0..edges {
            ids.push(z.edge_id(&r.name()?));
        }
        for _ in 0..r.u32()? {
            let net = r.net()?;
            let mut cells = Vec::new();
            for _ in 0..r.u8()? {
                let at = r.at;
                let edge = *ids
                    .get(usize::from(r.u16()?))
                    .ok_or((at, "edge index out of range".to_string()))?;
                let samples = r.u32()?;
                let mut kept = Vec::new();
                for _ in 0..r.u8()? {
                    let ms = f32::from(r.u16()?) / 4.0;
                    kept.push((ms, u64::from(r.u32()?)));
                }
                cells.push(Cell::restore(edge, samples, &kept, s.half_life));
            }
            if !cells.is_empty() {
                z.nets.insert(net, cells);
            }
        }
        s.zones.insert(name, z);
    }
    for _ in 0..r.u32()? {
        let resolver = r.net()?;
        let mut l = Link::default();
        let at = r.at;
        match r.u8()? {
            0 => {}
            fam @ (4 | 6) => {
                let a: [u8; 16] = r.take(16)?.try_into().expect("16");
                let len = r.u8()?;
                let when = r.u32()?;
                let ip = if fam == 4 {
                    IpAddr::V4(
                        Ipv6Addr::from(a)
                            .to_ipv4_mapped()
                            .unwrap_or(Ipv4Addr::UNSPECIFIED),
                    )
                } else {
                    IpAddr::V6(Ipv6Addr::from(a))
                };
                let net = IpNet::new(ip, len).map_err(|_| (at, "bad ECS prefix".to_string()))?;
                l.ecs = Some((net, when));
            }
            _ => return Err((at, "bad ECS family".into())),
        }
        for _ in 0..r.u32()? {
            let net = r.net()?;
            let when = r.u32()?;
            l.last = l.last.max(when);
            l.clients.insert(net, when);
        }
        s.links.insert(resolver, l);
    }
    if r.at != body.len() {
        return Err((r.at, "bytes after the end".into()));
    }
    s.recount();
    Ok(())
}

/// `<path>.<ext>`.
fn beside(path: &Path, ext: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// Writes `bytes` to `path` atomically (a temporary file, fsync, rename).
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), PersistError> {
    use std::io::Write;
    let io = |source| PersistError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = beside(path, "tmp");
    {
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Loads `path` into `s`; a missing file is an empty state. A damaged one
/// is renamed to `<path>.bad` (kept for a look) and reported.
pub fn load(path: &Path, s: &mut State) -> Result<(), PersistError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(PersistError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if let Err((at, reason)) = decode(&bytes, s) {
        s.zones.clear();
        s.links.clear();
        s.recount();
        let bad = beside(path, "bad");
        let _ = std::fs::rename(path, &bad);
        return Err(PersistError::Corrupt {
            path: path.to_path_buf(),
            at,
            reason,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rum::cells::{Beacon, Probe};
    use std::sync::Arc;

    fn sample_state() -> State {
        let mut s = State::new(1, 1800.0, 86400);
        for i in 0..50u8 {
            s.add_beacon(&Beacon {
                zone: "cdn.example.".into(),
                net: Net::of(IpAddr::V4(Ipv4Addr::new(198, 51, i, 1))),
                id: [i; 8],
                rtt: vec![
                    (Arc::from("lhr"), 10.0 + f32::from(i)),
                    (Arc::from("nrt"), 200.0),
                ],
                at: 1_000 + u64::from(i),
            });
        }
        s.add_probe(&Probe {
            id: [3; 8],
            resolver: "192.0.2.53".parse().unwrap(),
            ecs: Some("198.51.3.0/24".parse().unwrap()),
            at: 1_100,
        });
        s.add_probe(&Probe {
            id: [4; 8],
            resolver: "2001:db8::53".parse().unwrap(),
            ecs: None,
            at: 1_100,
        });
        s
    }

    #[test]
    fn round_trip() {
        let s = sample_state();
        let bytes = encode(&s, 5);
        let mut back = State::new(1, 1800.0, 86400);
        decode(&bytes, &mut back).unwrap();
        let z = &back.zones["cdn.example."];
        let orig = &s.zones["cdn.example."];
        assert_eq!(z.nets.len(), 50);
        for (net, cells) in &orig.nets {
            let got = &z.nets[net];
            for c in cells {
                let name = &orig.edges[usize::from(c.edge)];
                let g = got
                    .iter()
                    .find(|g| z.edges[usize::from(g.edge)] == *name)
                    .unwrap();
                assert_eq!((g.ms, g.samples, g.last), (c.ms, c.samples, c.last));
            }
        }
        assert_eq!(back.links.len(), 2);
        let l = &back.links[&Net::of("192.0.2.1".parse().unwrap())];
        assert_eq!(
            l.ecs.map(|e| e.0.to_string()).as_deref(),
            Some("198.51.3.0/24")
        );
        assert_eq!(l.clients.len(), 1);
    }

    #[test]
    fn damage_is_caught_and_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rum.state");
        let s = sample_state();
        let mut bytes = encode(&s, 5);
        write(&p, &bytes).unwrap();
        let mut back = State::new(1, 1800.0, 86400);
        load(&p, &mut back).unwrap();
        assert_eq!(back.zones["cdn.example."].nets.len(), 50);
        // A flipped byte, a torn write, another file.
        for bad in [
            {
                bytes[40] ^= 1;
                bytes.clone()
            },
            encode(&s, 5)[..100].to_vec(),
            b"hello".to_vec(),
        ] {
            std::fs::write(&p, &bad).unwrap();
            let mut st = State::new(1, 1800.0, 86400);
            let e = load(&p, &mut st).unwrap_err().to_string();
            assert!(e.contains("rum.state: byte"), "{e}");
            assert!(st.zones.is_empty());
            assert!(dir.path().join("rum.state.bad").exists());
            assert!(!p.exists());
        }
        // Missing: empty, no error.
        load(&p, &mut State::new(1, 1800.0, 86400)).unwrap();
    }
}
