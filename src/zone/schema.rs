//! The RDATA layout of every record type a zone may hold: one table read by
//! the master-file parser (`types`), by transfers (wire RDATA checked and
//! decompressed as it arrives) and by DNSSEC (canonical form, RFC 4034 §6.2).
//!
//! The set is what BIND 9.18's `named-checkzone` loads, less the obsolete
//! MD and MF it refuses, and the meta types (OPT, TKEY, TSIG, IXFR, AXFR,
//! ANY...) that cannot be in a zone. NULL and UNSPEC have no text form in
//! BIND either: they are written in RFC 3597's generic form.

/// How a field is laid out on the wire, and written in a master file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    U8,
    U16,
    U32,
    /// A 32-bit TTL-like counter: `1h` and friends are accepted in text.
    Ttl,
    /// A DNSSEC algorithm number or mnemonic (`ECDSAP256SHA256`).
    Alg,
    /// An RR type mnemonic or `TYPEnnn` (RRSIG's type covered).
    Type,
    /// RRSIG/SIG time: `YYYYMMDDHHmmSS` or seconds.
    Time,
    /// CERT's type: a mnemonic (`PKIX`) or a number.
    CertType,
    /// A domain name (uncompressed on the way out; a received message may
    /// compress it).
    Name,
    /// One `<character-string>`.
    Str,
    /// One or more character strings, to the end.
    Strs,
    /// An optional last character string (ISDN's subaddress).
    StrOpt,
    /// Hex to the end (at least `min` bytes).
    Hex {
        min: u8,
    },
    /// Base64 to the end; `-` in text means none when `dash`.
    B64 {
        dash: bool,
    },
    /// A length byte and hex (NSEC3's salt; `-` is empty).
    Salt,
    /// A length byte and base32hex (NSEC3's next hashed owner).
    Hash,
    Ipv4,
    Ipv6,
    /// NSEC/NSEC3/CSYNC type bitmap (RFC 4034 §4.1.2), to the end.
    Bitmap,
    /// NXT's RFC 2535 bitmap (bit n = type n < 128), to the end.
    OldBitmap,
    /// EUI-48 / EUI-64 (`00-00-5e-00-53-2a`, RFC 7043).
    Eui(u8),
    /// An ILNP 64-bit locator or node id (`2001:0db8:1140:1000`, RFC 6742).
    Ilnp64,
    /// A layout of its own (see [`Special`]).
    Special(Special),
}

/// Types whose layout the field kinds cannot say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Special {
    Wks,
    Nsap,
    Loc,
    Atma,
    A6,
    Apl,
    IpsecKey,
    Hip,
    AmtRelay,
    Svcb,
    Caa,
    Uri,
    /// Only RFC 3597's generic form (NULL, UNSPEC).
    Generic,
}

/// One record type.
#[derive(Debug)]
pub(crate) struct Spec {
    pub code: u16,
    pub name: &'static str,
    /// (what the field is called in errors, its kind)
    pub fields: &'static [(&'static str, Kind)],
    /// Names inside are lowercased in canonical form (RFC 4034 §6.2, with
    /// RFC 6840 §5.1: not NSEC's).
    pub canon_lower: bool,
}

use Kind::*;

const NAME: &[(&str, Kind)] = &[("target", Name)];
const TXT: &[(&str, Kind)] = &[("text", Strs)];
const DS: &[(&str, Kind)] = &[
    ("key tag", U16),
    ("algorithm", Alg),
    ("digest type", U8),
    ("digest", Hex { min: 1 }),
];
const DNSKEY: &[(&str, Kind)] = &[
    ("flags", U16),
    ("protocol", U8),
    ("algorithm", Alg),
    ("public key", B64 { dash: false }),
];
const SIG: &[(&str, Kind)] = &[
    ("type covered", Type),
    ("algorithm", Alg),
    ("labels", U8),
    ("original TTL", Ttl),
    ("expiration", Time),
    ("inception", Time),
    ("key tag", U16),
    ("signer", Name),
    ("signature", B64 { dash: false }),
];
const PREF_NAME: &[(&str, Kind)] = &[("preference", U16), ("target", Name)];
const TLSA: &[(&str, Kind)] = &[
    ("usage", U8),
    ("selector", U8),
    ("matching type", U8),
    ("data", Hex { min: 1 }),
];
const B64_ONLY: &[(&str, Kind)] = &[("data", B64 { dash: false })];

macro_rules! spec {
    ($code:expr, $name:expr, $fields:expr) => {
        Spec {
            code: $code,
            name: $name,
            fields: $fields,
            canon_lower: false,
        }
    };
    ($code:expr, $name:expr, $fields:expr, lower) => {
        Spec {
            code: $code,
            name: $name,
            fields: $fields,
            canon_lower: true,
        }
    };
}

/// Every type, by code.
pub(crate) static SPECS: &[Spec] = &[
    spec!(1, "A", &[("address", Ipv4)]),
    spec!(2, "NS", NAME, lower),
    spec!(5, "CNAME", NAME, lower),
    spec!(
        6,
        "SOA",
        &[
            ("mname", Name),
            ("rname", Name),
            ("serial", U32),
            ("refresh", Ttl),
            ("retry", Ttl),
            ("expire", Ttl),
            ("minimum", Ttl),
        ],
        lower
    ),
    spec!(7, "MB", NAME, lower),
    spec!(8, "MG", NAME, lower),
    spec!(9, "MR", NAME, lower),
    spec!(10, "NULL", &[("data", Special(Special::Generic))]),
    spec!(11, "WKS", &[("address", Special(Special::Wks))]),
    spec!(12, "PTR", NAME, lower),
    spec!(13, "HINFO", &[("CPU", Str), ("OS", Str)], lower),
    spec!(14, "MINFO", &[("rmailbx", Name), ("emailbx", Name)], lower),
    spec!(15, "MX", &[("preference", U16), ("exchange", Name)], lower),
    spec!(16, "TXT", TXT),
    spec!(17, "RP", &[("mailbox", Name), ("TXT domain", Name)], lower),
    spec!(18, "AFSDB", &[("subtype", U16), ("hostname", Name)], lower),
    spec!(19, "X25", &[("PSDN address", Str)]),
    spec!(20, "ISDN", &[("ISDN address", Str), ("subaddress", StrOpt)]),
    spec!(21, "RT", PREF_NAME, lower),
    spec!(22, "NSAP", &[("address", Special(Special::Nsap))]),
    spec!(23, "NSAP-PTR", NAME),
    spec!(24, "SIG", SIG, lower),
    spec!(25, "KEY", DNSKEY),
    spec!(
        26,
        "PX",
        &[("preference", U16), ("map822", Name), ("mapx400", Name)],
        lower
    ),
    spec!(
        27,
        "GPOS",
        &[("longitude", Str), ("latitude", Str), ("altitude", Str)]
    ),
    spec!(28, "AAAA", &[("address", Ipv6)]),
    spec!(29, "LOC", &[("location", Special(Special::Loc))]),
    spec!(30, "NXT", &[("next", Name), ("types", OldBitmap)], lower),
    spec!(31, "EID", &[("endpoint id", Hex { min: 1 })]),
    spec!(32, "NIMLOC", &[("locator", Hex { min: 1 })]),
    spec!(
        33,
        "SRV",
        &[
            ("priority", U16),
            ("weight", U16),
            ("port", U16),
            ("target", Name)
        ],
        lower
    ),
    spec!(34, "ATMA", &[("address", Special(Special::Atma))]),
    spec!(
        35,
        "NAPTR",
        &[
            ("order", U16),
            ("preference", U16),
            ("flags", Str),
            ("services", Str),
            ("regexp", Str),
            ("replacement", Name),
        ],
        lower
    ),
    spec!(36, "KX", PREF_NAME, lower),
    spec!(
        37,
        "CERT",
        &[
            ("type", CertType),
            ("key tag", U16),
            ("algorithm", Alg),
            ("certificate", B64 { dash: false }),
        ]
    ),
    spec!(38, "A6", &[("prefix", Special(Special::A6))], lower),
    spec!(39, "DNAME", NAME, lower),
    spec!(
        40,
        "SINK",
        &[
            ("meaning", U8),
            ("coding", U8),
            ("subcoding", U8),
            ("data", B64 { dash: true }),
        ]
    ),
    spec!(42, "APL", &[("items", Special(Special::Apl))]),
    spec!(43, "DS", DS),
    spec!(
        44,
        "SSHFP",
        &[
            ("algorithm", U8),
            ("fingerprint type", U8),
            ("fingerprint", Hex { min: 1 }),
        ]
    ),
    spec!(
        45,
        "IPSECKEY",
        &[("precedence", Special(Special::IpsecKey))]
    ),
    spec!(46, "RRSIG", SIG, lower),
    spec!(47, "NSEC", &[("next", Name), ("types", Bitmap)]),
    spec!(48, "DNSKEY", DNSKEY),
    spec!(49, "DHCID", B64_ONLY),
    spec!(
        50,
        "NSEC3",
        &[
            ("hash algorithm", U8),
            ("flags", U8),
            ("iterations", U16),
            ("salt", Salt),
            ("next hashed owner", Hash),
            ("types", Bitmap),
        ]
    ),
    spec!(
        51,
        "NSEC3PARAM",
        &[
            ("hash algorithm", U8),
            ("flags", U8),
            ("iterations", U16),
            ("salt", Salt),
        ]
    ),
    spec!(52, "TLSA", TLSA),
    spec!(53, "SMIMEA", TLSA),
    spec!(55, "HIP", &[("algorithm", Special(Special::Hip))]),
    spec!(56, "NINFO", TXT),
    spec!(57, "RKEY", DNSKEY),
    spec!(58, "TALINK", &[("previous", Name), ("next", Name)]),
    spec!(59, "CDS", DS),
    spec!(60, "CDNSKEY", DNSKEY),
    spec!(61, "OPENPGPKEY", &[("public key", B64 { dash: false })]),
    spec!(
        62,
        "CSYNC",
        &[("SOA serial", U32), ("flags", U16), ("types", Bitmap)]
    ),
    spec!(
        63,
        "ZONEMD",
        &[
            ("serial", U32),
            ("scheme", U8),
            ("hash algorithm", U8),
            ("digest", Hex { min: 12 }),
        ]
    ),
    spec!(64, "SVCB", &[("priority", Special(Special::Svcb))]),
    spec!(65, "HTTPS", &[("priority", Special(Special::Svcb))]),
    spec!(
        66,
        "DSYNC",
        &[
            ("type", Type),
            ("scheme", U8),
            ("port", U16),
            ("target", Name)
        ]
    ),
    spec!(67, "HHIT", B64_ONLY),
    spec!(68, "BRID", B64_ONLY),
    spec!(99, "SPF", TXT),
    spec!(103, "UNSPEC", &[("data", Special(Special::Generic))]),
    spec!(104, "NID", &[("preference", U16), ("node id", Ilnp64)]),
    spec!(105, "L32", &[("preference", U16), ("locator", Ipv4)]),
    spec!(106, "L64", &[("preference", U16), ("locator", Ilnp64)]),
    spec!(107, "LP", &[("preference", U16), ("FQDN", Name)]),
    spec!(108, "EUI48", &[("address", Eui(6))]),
    spec!(109, "EUI64", &[("address", Eui(8))]),
    spec!(256, "URI", &[("priority", Special(Special::Uri))]),
    spec!(257, "CAA", &[("flags", Special(Special::Caa))]),
    spec!(258, "AVC", TXT),
    spec!(
        259,
        "DOA",
        &[
            ("enterprise", U32),
            ("type", U32),
            ("location", U8),
            ("media type", Str),
            ("data", B64 { dash: true }),
        ]
    ),
    spec!(
        260,
        "AMTRELAY",
        &[("precedence", Special(Special::AmtRelay))]
    ),
    spec!(261, "RESINFO", TXT),
    spec!(262, "WALLET", TXT),
    spec!(32768, "TA", DS),
    spec!(32769, "DLV", DS),
    spec!(
        65533,
        "KEYDATA",
        &[
            ("refresh", Time),
            ("add hold-down", Time),
            ("remove hold-down", Time),
            ("flags", U16),
            ("protocol", U8),
            ("algorithm", Alg),
            ("public key", B64 { dash: false }),
        ]
    ),
];

/// The spec of a type code.
pub(crate) fn by_code(code: u16) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.code == code)
}

/// The spec of a mnemonic (any case).
pub(crate) fn by_name(name: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

/// A type's mnemonic, or `TYPEnnn` (RFC 3597 §5) for one we don't know.
pub fn type_name(code: u16) -> String {
    match code {
        41 => "OPT".into(),
        249 => "TKEY".into(),
        250 => "TSIG".into(),
        251 => "IXFR".into(),
        252 => "AXFR".into(),
        255 => "ANY".into(),
        _ => by_code(code).map_or_else(|| format!("TYPE{code}"), |s| s.name.into()),
    }
}

/// A type code from a mnemonic or `TYPEnnn`.
pub fn type_code(word: &str) -> Option<u16> {
    if let Some(s) = by_name(word) {
        return Some(s.code);
    }
    let upper = word.to_ascii_uppercase();
    upper.strip_prefix("TYPE")?.parse().ok()
}

/// Reads RDATA of type `code` at `msg[start..start + len]`: checks it is
/// well formed for the type and returns it with every name uncompressed
/// (pointers into `msg` followed). Types we have no spec for pass as they
/// are. With `msg` the RDATA alone (a generic `\#` record, a file), a
/// pointer is an error, as RFC 3597 §4 says for the types after RFC 1035.
pub fn from_wire(code: u16, msg: &[u8], start: usize, len: usize) -> Result<Vec<u8>, String> {
    let end = start
        .checked_add(len)
        .filter(|&e| e <= msg.len())
        .ok_or("RDATA runs past the message")?;
    let Some(spec) = by_code(code) else {
        return Ok(msg[start..end].to_vec());
    };
    let mut r = WireReader {
        msg,
        pos: start,
        end,
        out: Vec::with_capacity(len),
    };
    for (what, kind) in spec.fields {
        r.field(*kind)
            .map_err(|e| format!("{} {what}: {e}", spec.name))?;
    }
    if r.pos != end {
        return Err(format!("{}: {} bytes left over", spec.name, end - r.pos));
    }
    Ok(r.out)
}

/// [`from_wire`] on RDATA alone: whether it is well formed.
pub fn check_rdata(code: u16, rdata: &[u8]) -> Result<(), String> {
    from_wire(code, rdata, 0, rdata.len()).map(drop)
}

/// Appends the canonical form (RFC 4034 §6.2) of uncompressed RDATA: names
/// lowercased for the types that say so; everything else as it is.
pub fn canonical(code: u16, rdata: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(rdata);
    let Some(spec) = by_code(code).filter(|s| s.canon_lower) else {
        return;
    };
    let mut names = Vec::new();
    let mut r = WireReader {
        msg: rdata,
        pos: 0,
        end: rdata.len(),
        out: Vec::new(),
    };
    for (_, kind) in spec.fields {
        let at = r.out.len();
        if r.field(*kind).is_err() {
            return;
        }
        if matches!(kind, Name) {
            names.push(at..r.out.len());
        }
        if let Special(Special::A6) = kind {
            // The prefix name is the field's tail, after the address.
            if let Some(n) = a6_name_at(&r.out[at..]) {
                names.push(at + n..r.out.len());
            }
        }
    }
    // Uncompressed RDATA: the reader's output equals the input.
    for range in names {
        for b in &mut out[start + range.start..start + range.end] {
            b.make_ascii_lowercase();
        }
    }
}

/// Where A6's prefix name starts in its RDATA, when it has one.
fn a6_name_at(rd: &[u8]) -> Option<usize> {
    let p = *rd.first()?;
    (p > 0).then(|| 1 + a6_suffix_len(p))
}

/// Number of address bytes A6 carries for a prefix length (RFC 2874 §3.1).
pub(crate) fn a6_suffix_len(prefix: u8) -> usize {
    usize::from(128 - prefix).div_ceil(8)
}

struct WireReader<'a> {
    msg: &'a [u8],
    pos: usize,
    end: usize,
    out: Vec<u8>,
}

impl WireReader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.end - self.pos < n {
            return Err("truncated".into());
        }
        let b = &self.msg[self.pos..self.pos + n];
        self.out.extend_from_slice(b);
        self.pos += n;
        Ok(b)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn rest(&mut self) -> &[u8] {
        let b = &self.msg[self.pos..self.end];
        self.out.extend_from_slice(b);
        self.pos = self.end;
        b
    }

    /// A name, following compression pointers into the message (never
    /// forward or into itself, and at most 255 bytes expanded).
    fn name(&mut self) -> Result<(), String> {
        let mut pos = self.pos;
        let mut jumped = false;
        let mut total = 0usize;
        let mut hops = 0;
        loop {
            let limit = if jumped { self.msg.len() } else { self.end };
            let len = *self.msg[..limit].get(pos).ok_or("truncated name")?;
            match len {
                0 => {
                    self.out.push(0);
                    if !jumped {
                        self.pos = pos + 1;
                    }
                    return Ok(());
                }
                l if l & 0xC0 == 0xC0 => {
                    let lo = *self.msg[..limit].get(pos + 1).ok_or("truncated pointer")?;
                    let target = usize::from(l & 0x3F) << 8 | usize::from(lo);
                    if target >= pos || hops > 127 {
                        return Err("bad compression pointer".into());
                    }
                    if !jumped {
                        self.pos = pos + 2;
                        jumped = true;
                    }
                    hops += 1;
                    pos = target;
                }
                l if l <= 63 => {
                    let l = usize::from(l);
                    let label = self.msg[..limit]
                        .get(pos + 1..pos + 1 + l)
                        .ok_or("truncated label")?;
                    total += 1 + l;
                    if total + 1 > crate::wire::MAX_NAME {
                        return Err("name longer than 255 bytes".into());
                    }
                    self.out.push(l as u8);
                    self.out.extend_from_slice(label);
                    pos += 1 + l;
                }
                _ => return Err("bad label type".into()),
            }
        }
    }

    fn char_string(&mut self) -> Result<(), String> {
        let l = usize::from(self.u8()?);
        self.take(l).map(drop)
    }

    fn field(&mut self, kind: Kind) -> Result<(), String> {
        match kind {
            U8 | Alg => self.take(1).map(drop),
            U16 | Type | CertType => self.take(2).map(drop),
            U32 | Ttl | Time => self.take(4).map(drop),
            Ipv4 => self.take(4).map(drop),
            Ipv6 => self.take(16).map(drop),
            Eui(n) => self.take(usize::from(n)).map(drop),
            Ilnp64 => self.take(8).map(drop),
            Name => self.name(),
            Str => self.char_string(),
            StrOpt => {
                if self.pos < self.end {
                    self.char_string()?;
                }
                Ok(())
            }
            Strs => {
                if self.pos == self.end {
                    return Err("needs at least one character string".into());
                }
                while self.pos < self.end {
                    self.char_string()?;
                }
                Ok(())
            }
            Hex { min } => {
                let n = self.rest().len();
                if n < usize::from(min) {
                    return Err(format!("must be at least {min} bytes"));
                }
                Ok(())
            }
            B64 { dash } => {
                let n = self.rest().len();
                if n == 0 && !dash {
                    return Err("is empty".into());
                }
                Ok(())
            }
            Salt | Hash => {
                let l = usize::from(self.u8()?);
                if kind == Hash && l == 0 {
                    return Err("is empty".into());
                }
                self.take(l).map(drop)
            }
            Bitmap => {
                let b = self.rest().to_vec();
                check_bitmap(&b)
            }
            OldBitmap => {
                let b = self.rest();
                if b.len() > 16 {
                    return Err("longer than 16 bytes".into());
                }
                Ok(())
            }
            Special(s) => self.special(s),
        }
    }

    fn special(&mut self, s: Special) -> Result<(), String> {
        match s {
            Special::Generic => {
                self.rest();
                Ok(())
            }
            Special::Wks => {
                self.take(5)?;
                let b = self.rest();
                if b.len() > 8192 {
                    return Err("bitmap longer than 8192 bytes".into());
                }
                Ok(())
            }
            Special::Nsap => {
                if self.rest().is_empty() {
                    return Err("is empty".into());
                }
                Ok(())
            }
            Special::Loc => {
                let b = self.take(16)?;
                if b[0] != 0 {
                    return Err("only LOC version 0 (16 bytes) is known".into());
                }
                Ok(())
            }
            Special::Atma => {
                let f = self.u8()?;
                let a = self.rest();
                if f > 2 || a.is_empty() {
                    return Err("bad format or empty address".into());
                }
                Ok(())
            }
            Special::A6 => {
                let p = self.u8()?;
                if p > 128 {
                    return Err(format!("prefix length {p} is above 128"));
                }
                self.take(a6_suffix_len(p))?;
                if p > 0 {
                    self.name()?;
                }
                Ok(())
            }
            Special::Apl => {
                while self.pos < self.end {
                    let afi = u16::from_be_bytes(self.take(2)?.try_into().expect("2"));
                    let prefix = self.u8()?;
                    let n = self.u8()? & 0x7F;
                    let max = match afi {
                        1 => 4,
                        2 => 16,
                        _ => return Err(format!("address family {afi}")),
                    };
                    if n > max || u32::from(prefix) > max as u32 * 8 {
                        return Err("address or prefix too long".into());
                    }
                    self.take(usize::from(n))?;
                }
                Ok(())
            }
            Special::IpsecKey => {
                self.u8()?;
                let gw = self.u8()?;
                self.u8()?;
                match gw {
                    0 => {}
                    1 => drop(self.take(4)?),
                    2 => drop(self.take(16)?),
                    3 => self.name()?,
                    n => return Err(format!("gateway type {n}")),
                }
                self.rest();
                Ok(())
            }
            Special::AmtRelay => {
                self.u8()?;
                let t = self.u8()? & 0x7F;
                match t {
                    0 => {}
                    1 => drop(self.take(4)?),
                    2 => drop(self.take(16)?),
                    3 => self.name()?,
                    n => return Err(format!("relay type {n}")),
                }
                Ok(())
            }
            Special::Hip => {
                let hit = usize::from(self.u8()?);
                self.u8()?;
                let pk = usize::from(u16::from_be_bytes(self.take(2)?.try_into().expect("2")));
                if hit == 0 || pk == 0 {
                    return Err("empty HIT or public key".into());
                }
                self.take(hit)?;
                self.take(pk)?;
                while self.pos < self.end {
                    self.name()?;
                }
                Ok(())
            }
            Special::Svcb => {
                self.take(2)?;
                self.name()?;
                self.rest();
                let out = self.out.clone();
                super::svcb::check_wire(&out)
            }
            Special::Caa => {
                self.u8()?;
                let l = usize::from(self.u8()?);
                let tag = self.take(l)?;
                if tag.is_empty() || tag.len() > 15 || !tag.iter().all(u8::is_ascii_alphanumeric) {
                    return Err("tag must be 1-15 letters or digits".into());
                }
                self.rest();
                Ok(())
            }
            Special::Uri => {
                self.take(4)?;
                if self.rest().is_empty() {
                    return Err("target is empty".into());
                }
                Ok(())
            }
        }
    }
}

/// RFC 4034 §4.1.2: windows in increasing order, each 1-32 bytes long,
/// no trailing zero byte in a window.
pub(crate) fn check_bitmap(b: &[u8]) -> Result<(), String> {
    let mut pos = 0;
    let mut last: Option<u8> = None;
    while pos < b.len() {
        let (Some(&w), Some(&l)) = (b.get(pos), b.get(pos + 1)) else {
            return Err("truncated type bitmap".into());
        };
        if last.is_some_and(|p| w <= p) {
            return Err("type bitmap windows out of order".into());
        }
        if l == 0 || l > 32 {
            return Err("type bitmap window length not 1..32".into());
        }
        let bits = b
            .get(pos + 2..pos + 2 + usize::from(l))
            .ok_or("truncated type bitmap")?;
        if bits.last() == Some(&0) {
            return Err("type bitmap window ends in a zero byte".into());
        }
        last = Some(w);
        pos += 2 + usize::from(l);
    }
    Ok(())
}

/// Appends the NSEC-style bitmap of `types` (any order, duplicates
/// allowed; sorted in place).
pub fn write_bitmap(types: &mut [u16], rd: &mut Vec<u8>) {
    types.sort_unstable();
    let mut window: Option<(u8, [u8; 32], usize)> = None;
    let flush = |rd: &mut Vec<u8>, w: &(u8, [u8; 32], usize)| {
        rd.push(w.0);
        rd.push(w.2 as u8);
        rd.extend_from_slice(&w.1[..w.2]);
    };
    for &t in types.iter() {
        let (hi, lo) = ((t >> 8) as u8, (t & 0xFF) as usize);
        if window.as_ref().is_some_and(|w| w.0 != hi) {
            flush(rd, window.as_ref().expect("checked"));
            window = None;
        }
        let w = window.get_or_insert((hi, [0u8; 32], 0));
        w.1[lo / 8] |= 0x80 >> (lo % 8);
        w.2 = w.2.max(lo / 8 + 1);
    }
    if let Some(w) = &window {
        flush(rd, w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_unique() {
        for (i, a) in SPECS.iter().enumerate() {
            for b in &SPECS[i + 1..] {
                assert_ne!(a.code, b.code, "{}", a.name);
                assert!(!a.name.eq_ignore_ascii_case(b.name));
            }
        }
        assert_eq!(type_code("type65280"), Some(65280));
        assert_eq!(type_code("nsap-ptr"), Some(23));
        assert_eq!(type_name(65280), "TYPE65280");
    }

    #[test]
    fn compressed_names_are_expanded_and_bad_pointers_refused() {
        // A message: "\x03foo\x00" at 0, then MX RDATA 10 + pointer to 0.
        let msg = b"\x03foo\x00\x00\x0a\xc0\x00";
        assert_eq!(from_wire(15, msg, 5, 4).unwrap(), b"\x00\x0a\x03foo\x00");
        // A pointer to itself loops.
        let msg = b"\x00\x0a\xc0\x02";
        assert!(from_wire(15, msg, 0, 4).is_err());
        // RDATA alone: a pointer cannot point anywhere before it.
        assert!(check_rdata(2, b"\xc0\x00").is_err());
        assert!(check_rdata(15, b"\x00\x0a\x03foo\x00extra").is_err());
    }

    #[test]
    fn canonical_lowercases_only_where_rfc4034_says() {
        let mut out = Vec::new();
        canonical(15, b"\x00\x0a\x03FoO\x00", &mut out);
        assert_eq!(out, b"\x00\x0a\x03foo\x00");
        out.clear();
        // NSEC's next name keeps its case (RFC 6840 §5.1).
        canonical(47, b"\x03FoO\x00\x00\x01\x40", &mut out);
        assert_eq!(out, b"\x03FoO\x00\x00\x01\x40");
        out.clear();
        // A6 with a prefix: the name after the address bytes.
        canonical(
            38,
            b"\x40\x00\x00\x00\x00\x00\x00\x00\x01\x01X\x00",
            &mut out,
        );
        assert_eq!(out, b"\x40\x00\x00\x00\x00\x00\x00\x00\x01\x01x\x00");
    }

    #[test]
    fn bitmaps_are_checked() {
        assert!(check_bitmap(b"\x00\x01\x40").is_ok());
        assert!(check_bitmap(b"\x00\x02\x40\x00").is_err());
        assert!(check_bitmap(b"\x01\x01\x40\x00\x01\x40").is_err());
        let mut rd = Vec::new();
        write_bitmap(&mut [256, 2, 1, 2], &mut rd);
        assert_eq!(rd, b"\x00\x01\x60\x01\x01\x80");
    }

    /// What the `transfer` fuzz target does, on a fixed stream of
    /// pseudo-random RDATA: errors, never a panic.
    #[test]
    fn random_rdata_never_panics() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for spec in SPECS {
            for _ in 0..300 {
                let n = (next() % 40) as usize;
                let mut rd: Vec<u8> = (0..n).map(|_| next() as u8).collect();
                if next() % 2 == 0 {
                    // Now and then a pointer back into a little message.
                    rd.extend_from_slice(&[0xC0, (next() % 8) as u8]);
                }
                let mut msg = b"\x03abc\x00".to_vec();
                let at = msg.len();
                msg.extend_from_slice(&rd);
                let _ = from_wire(spec.code, &msg, at, rd.len());
                let mut out = Vec::new();
                canonical(spec.code, &rd, &mut out);
            }
        }
    }
}
