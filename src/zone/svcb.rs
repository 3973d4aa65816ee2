//! SVCB/HTTPS SvcParams (RFC 9460 §2.1, §7, Appendix A): presentation
//! `key=value` to wire form, and checks on wire values.
//!
//! Shared by zone files and the steered HTTPS template of the pools file,
//! which builds the same wire params and adds the steered hints.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use data_encoding::BASE64;

use super::lexer::Token;

pub const KEY_MANDATORY: u16 = 0;
pub const KEY_ALPN: u16 = 1;
pub const KEY_NO_DEFAULT_ALPN: u16 = 2;
pub const KEY_PORT: u16 = 3;
pub const KEY_IPV4HINT: u16 = 4;
pub const KEY_ECH: u16 = 5;
pub const KEY_IPV6HINT: u16 = 6;
pub const KEY_DOHPATH: u16 = 7;
pub const KEY_OHTTP: u16 = 8;
/// draft-ietf-tls-key-share-prediction: TLS named groups, in order of
/// preference.
pub const KEY_TLS_SUPPORTED_GROUPS: u16 = 9;

/// SvcParams by key: wire values, kept in key order (the wire order).
pub type Params = BTreeMap<u16, Vec<u8>>;

/// The presentation name of a key.
pub fn key_name(k: u16) -> String {
    match k {
        KEY_MANDATORY => "mandatory".into(),
        KEY_ALPN => "alpn".into(),
        KEY_NO_DEFAULT_ALPN => "no-default-alpn".into(),
        KEY_PORT => "port".into(),
        KEY_IPV4HINT => "ipv4hint".into(),
        KEY_ECH => "ech".into(),
        KEY_IPV6HINT => "ipv6hint".into(),
        KEY_DOHPATH => "dohpath".into(),
        KEY_OHTTP => "ohttp".into(),
        KEY_TLS_SUPPORTED_GROUPS => "tls-supported-groups".into(),
        _ => format!("key{k}"),
    }
}

/// A key from its presentation name (`alpn`, `key65000`).
pub fn key_number(name: &str) -> Result<u16, String> {
    Ok(match name {
        "mandatory" => KEY_MANDATORY,
        "alpn" => KEY_ALPN,
        "no-default-alpn" => KEY_NO_DEFAULT_ALPN,
        "port" => KEY_PORT,
        "ipv4hint" => KEY_IPV4HINT,
        "ech" => KEY_ECH,
        "ipv6hint" => KEY_IPV6HINT,
        "dohpath" => KEY_DOHPATH,
        "ohttp" => KEY_OHTTP,
        "tls-supported-groups" => KEY_TLS_SUPPORTED_GROUPS,
        _ => {
            let n = name
                .strip_prefix("key")
                .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| format!("unknown SvcParam key '{name}'"))?;
            let v: u16 = n
                .parse()
                .map_err(|_| format!("SvcParam key '{name}' is above key65534"))?;
            if v == 65535 {
                return Err("SvcParam key65535 is reserved (RFC 9460 §14.3.2)".into());
            }
            v
        }
    })
}

/// Splits a value-list (RFC 9460 Appendix A.1): `,` separates, `\,` and
/// `\\` are a literal comma and backslash.
fn value_list(v: &[u8]) -> Vec<Vec<u8>> {
    let mut items = vec![Vec::new()];
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'\\' if i + 1 < v.len() => {
                items.last_mut().expect("one item").push(v[i + 1]);
                i += 2;
            }
            b',' => {
                items.push(Vec::new());
                i += 1;
            }
            c => {
                items.last_mut().expect("one item").push(c);
                i += 1;
            }
        }
    }
    items
}

/// The wire value of `key` from its presentation value (`None`: no `=`).
pub fn encode_value(key: u16, value: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let name = key_name(key);
    let need = || format!("SvcParam {name} needs a value");
    let text = |v: &[u8]| {
        std::str::from_utf8(v)
            .map(str::to_owned)
            .map_err(|_| format!("SvcParam {name} value is not UTF-8"))
    };
    let mut out = Vec::new();
    match key {
        KEY_NO_DEFAULT_ALPN | KEY_OHTTP => {
            if value.is_some_and(|v| !v.is_empty()) {
                return Err(format!("SvcParam {name} takes no value"));
            }
        }
        KEY_MANDATORY => {
            let mut keys = Vec::new();
            for item in value_list(value.ok_or_else(need)?) {
                let k = key_number(&text(&item)?)?;
                if k == KEY_MANDATORY {
                    return Err("mandatory cannot list itself (RFC 9460 §8)".into());
                }
                if keys.contains(&k) {
                    return Err(format!("mandatory lists {} twice", key_name(k)));
                }
                keys.push(k);
            }
            // Wire order is strictly increasing (RFC 9460 §8).
            keys.sort_unstable();
            for k in keys {
                out.extend(k.to_be_bytes());
            }
        }
        KEY_ALPN => {
            for id in value_list(value.ok_or_else(need)?) {
                if id.is_empty() || id.len() > 255 {
                    return Err("alpn ids must be 1 to 255 bytes".into());
                }
                out.push(id.len() as u8);
                out.extend(id);
            }
        }
        KEY_PORT => {
            let p: u16 = text(value.ok_or_else(need)?)?
                .parse()
                .map_err(|_| "SvcParam port must be a number 0-65535".to_string())?;
            out.extend(p.to_be_bytes());
        }
        KEY_IPV4HINT => {
            for a in value_list(value.ok_or_else(need)?) {
                let a: Ipv4Addr = text(&a)?.parse().map_err(|_| {
                    format!(
                        "ipv4hint '{}' is not an IPv4 address",
                        text(&a).unwrap_or_default()
                    )
                })?;
                out.extend(a.octets());
            }
        }
        KEY_IPV6HINT => {
            for a in value_list(value.ok_or_else(need)?) {
                let a: Ipv6Addr = text(&a)?.parse().map_err(|_| {
                    format!(
                        "ipv6hint '{}' is not an IPv6 address",
                        text(&a).unwrap_or_default()
                    )
                })?;
                out.extend(a.octets());
            }
        }
        KEY_ECH => {
            out = BASE64
                .decode(value.ok_or_else(need)?)
                .map_err(|_| "SvcParam ech is not valid base64".to_string())?;
        }
        KEY_DOHPATH => {
            let v = text(value.ok_or_else(need)?)?;
            out.extend(v.as_bytes());
        }
        KEY_TLS_SUPPORTED_GROUPS => {
            for g in value_list(value.ok_or_else(need)?) {
                let g: u16 = text(&g)?.parse().map_err(|_| {
                    "tls-supported-groups takes TLS group numbers 0-65535, like 29,23".to_string()
                })?;
                out.extend(g.to_be_bytes());
            }
        }
        _ => out.extend(value.unwrap_or_default()),
    }
    check_value(key, &out)?;
    Ok(out)
}

/// RFC 9460 §7 shape of a known key's wire value.
pub fn check_value(key: u16, v: &[u8]) -> Result<(), String> {
    let name = key_name(key);
    let ok = match key {
        KEY_MANDATORY => {
            !v.is_empty()
                && v.len().is_multiple_of(2)
                && v.chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .try_fold(None, |prev: Option<u16>, k| {
                        (k != KEY_MANDATORY && prev.is_none_or(|p| k > p)).then_some(Some(k))
                    })
                    .is_some()
        }
        KEY_ALPN => {
            let mut p = 0;
            let mut ok = !v.is_empty();
            while ok && p < v.len() {
                let l = v[p] as usize;
                ok = l > 0 && p + 1 + l <= v.len();
                p += 1 + l;
            }
            ok
        }
        KEY_NO_DEFAULT_ALPN | KEY_OHTTP => v.is_empty(),
        KEY_PORT => v.len() == 2,
        KEY_IPV4HINT => !v.is_empty() && v.len().is_multiple_of(4),
        KEY_IPV6HINT => !v.is_empty() && v.len().is_multiple_of(16),
        KEY_DOHPATH => std::str::from_utf8(v).is_ok(),
        KEY_TLS_SUPPORTED_GROUPS => !v.is_empty() && v.len().is_multiple_of(2),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("SvcParam {name} has a malformed value"))
    }
}

/// RFC 9460 checks on SVCB/HTTPS wire RDATA (Knot's `kzonecheck` rules):
/// keys in strictly increasing order, every `mandatory` key present and
/// `mandatory` not listing itself, values of the known keys well formed.
pub(crate) fn check_wire(b: &[u8]) -> Result<(), String> {
    let end = name_end(b, 2).ok_or("bad SvcPriority or TargetName")?;
    let mut pos = end;
    let mut keys: Vec<u16> = Vec::new();
    let mut mandatory: Vec<u16> = Vec::new();
    while pos < b.len() {
        let (Some(k), Some(l)) = (rd16(b, pos), rd16(b, pos + 2)) else {
            return Err("truncated SvcParam".into());
        };
        let v = b
            .get(pos + 4..pos + 4 + l as usize)
            .ok_or("SvcParam value runs past the RDATA")?;
        if let Some(&last) = keys.last()
            && k <= last
        {
            return Err(format!(
                "SvcParam keys out of order: {} after {} (RFC 9460 §2.2 wants strictly increasing keys)",
                key_name(k),
                key_name(last)
            ));
        }
        check_value(k, v)?;
        if k == 0 {
            mandatory = v
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
        }
        keys.push(k);
        pos += 4 + l as usize;
    }
    for m in mandatory {
        if !keys.contains(&m) {
            return Err(format!(
                "mandatory SvcParam {} is missing (RFC 9460 §8)",
                key_name(m)
            ));
        }
    }
    if keys.contains(&2) && !keys.contains(&1) {
        return Err("no-default-alpn needs alpn (RFC 9460 §7.1.1)".into());
    }
    Ok(())
}

/// End of an uncompressed wire name starting at `pos`.
fn name_end(b: &[u8], mut pos: usize) -> Option<usize> {
    let start = pos;
    loop {
        let len = *b.get(pos)? as usize;
        if len > 63 {
            return None;
        }
        pos += 1 + len;
        if pos - start > 255 || pos > b.len() {
            return None;
        }
        if len == 0 {
            return Some(pos);
        }
    }
}

fn rd16(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// Parses the SvcParams tokens of a record; errors carry the token index.
pub(crate) fn parse_params(tokens: &[Token]) -> Result<Vec<u8>, (usize, String)> {
    let mut params = Params::new();
    for (i, t) in tokens.iter().enumerate() {
        if t.quoted {
            return Err((
                i,
                format!("expected key=value, found quoted string \"{}\"", t.raw),
            ));
        }
        let (key, value) = match t.bytes.iter().position(|&b| b == b'=') {
            Some(eq) => (&t.bytes[..eq], Some(&t.bytes[eq + 1..])),
            None => (&t.bytes[..], None),
        };
        let key = std::str::from_utf8(key)
            .map_err(|_| (i, "SvcParam key is not ASCII".to_string()))?
            .to_ascii_lowercase();
        let k = key_number(&key).map_err(|e| (i, e))?;
        if params.contains_key(&k) {
            return Err((i, format!("SvcParam {key} appears twice (RFC 9460 §2.1)")));
        }
        let v = encode_value(k, value).map_err(|e| (i, e))?;
        params.insert(k, v);
    }
    Ok(encode(&params))
}

/// Wire form of params, in key order.
pub fn encode(params: &Params) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in params {
        out.extend(k.to_be_bytes());
        out.extend((v.len() as u16).to_be_bytes());
        out.extend(v);
    }
    out
}

/// A steered host's HTTPS or SVCB record (pools file `https:`/`svcb:`):
/// everything but the address hints, which each answer fills from the
/// same steering decision as its A and AAAA records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// 64 (SVCB) or 65 (HTTPS).
    pub rtype: u16,
    /// The host it belongs to (index into the zone's steered hosts).
    pub host: u32,
    /// SvcPriority: ServiceMode (1 and up) only.
    pub priority: u16,
    /// TargetName, uncompressed wire form ("." is the owner itself).
    pub target: Box<[u8]>,
    /// Wire params without ipv4hint and ipv6hint.
    pub params: Params,
}

impl Template {
    /// The RDATA with `v4`/`v6` as hints (none when empty), keys in order.
    pub fn rdata_len(&self, v4: usize, v6: usize) -> usize {
        let hint = |n: usize, size: usize| if n == 0 { 0 } else { 4 + n * size };
        2 + self.target.len()
            + self.params.values().map(|v| 4 + v.len()).sum::<usize>()
            + hint(v4, 4)
            + hint(v6, 16)
    }

    /// Writes the RDATA through `put`, hints from the two address lists.
    pub fn write<E>(
        &self,
        v4: &[std::net::Ipv4Addr],
        v6: &[std::net::Ipv6Addr],
        mut put: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        put(&self.priority.to_be_bytes())?;
        put(&self.target)?;
        let mut hints_done = [v4.is_empty(), v6.is_empty()];
        let hint = |key: u16, put: &mut dyn FnMut(&[u8]) -> Result<(), E>| -> Result<(), E> {
            put(&key.to_be_bytes())?;
            if key == KEY_IPV4HINT {
                put(&((v4.len() * 4) as u16).to_be_bytes())?;
                for a in v4 {
                    put(&a.octets())?;
                }
            } else {
                put(&((v6.len() * 16) as u16).to_be_bytes())?;
                for a in v6 {
                    put(&a.octets())?;
                }
            }
            Ok(())
        };
        for (&k, v) in &self.params {
            if k > KEY_IPV4HINT && !hints_done[0] {
                hint(KEY_IPV4HINT, &mut put)?;
                hints_done[0] = true;
            }
            if k > KEY_IPV6HINT && !hints_done[1] {
                hint(KEY_IPV6HINT, &mut put)?;
                hints_done[1] = true;
            }
            put(&k.to_be_bytes())?;
            put(&(v.len() as u16).to_be_bytes())?;
            put(v)?;
        }
        if !hints_done[0] {
            hint(KEY_IPV4HINT, &mut put)?;
        }
        if !hints_done[1] {
            hint(KEY_IPV6HINT, &mut put)?;
        }
        Ok(())
    }
}
