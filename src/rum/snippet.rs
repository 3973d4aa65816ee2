//! `GET /rum.js?host=<name>`: the snippet operators put in their pages
//! (`rum.js`, beside this file), with the host baked in.

/// The snippet's source with `"__HOST__"` still in it.
const SOURCE: &str = include_str!("rum.js");

/// Whether `host` can be baked into the snippet as it is: a DNS name in
/// letters, digits, `-`, `_` and dots (so it needs no escaping).
pub fn plain_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The snippet for `host` (a [`plain_name`]).
pub fn snippet(host: &str) -> String {
    debug_assert!(plain_name(host));
    SOURCE.replace("\"__HOST__\"", &format!("\"{host}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_is_baked_in_once() {
        let s = snippet("www.cdn.example");
        assert!(s.contains("})(\"www.cdn.example\");"));
        assert!(!s.contains("__HOST__"));
        assert!(plain_name("www.cdn.example"));
        assert!(!plain_name("x\";alert(1);\""));
        assert!(!plain_name(""));
    }

    /// The snippet declares nothing at the top level: one expression
    /// statement, an IIFE.
    #[test]
    fn no_globals() {
        let code: Vec<&str> = SOURCE
            .lines()
            .filter(|l| !l.trim().is_empty())
            .skip_while(|l| l.starts_with("/*") || l.starts_with("   "))
            .collect();
        assert!(code[0].starts_with("(function (host) {"), "{}", code[0]);
        assert_eq!(code.last().copied(), Some("})(\"__HOST__\");"));
    }
}
