//! A steered name: its candidates, the rules that pick other candidates
//! by where the client is, and how to choose among them.

use super::types::{AllDown, EdgeIdx};
use crate::geo::{Code, Location};

/// A steered name.
#[derive(Debug, Clone)]
pub struct Host {
    /// Relative name as configured (`www`), for logs, metrics and explain.
    pub name: String,
    pub candidates: Vec<EdgeIdx>,
    pub rules: Vec<Rule>,
    pub answers: u8,
    pub ttl: u32,
    pub spread_km: f64,
    /// Edges within this many ms of the best by RTT share clients.
    pub spread_ms: f64,
    /// Among candidates within this margin of the best, the cheapest wins
    /// (0: off); km for distance order, ms for RTT order.
    pub cost_margin_km: f64,
    pub cost_margin_ms: f64,
    /// Fraction of clients (by subnet hash) sent to healthy partners even
    /// when own edges are up; None: partners only rank by RTT or last.
    pub partner_share: Option<f64>,
    /// Wire-form CNAME target.
    pub fallback: Option<Box<[u8]>>,
    pub all_down: AllDown,
    /// No spreading, cost margin or partner split: the first live
    /// candidates in order are the answer. Set by [`Host::finish`], once
    /// with the host, as every steered query asks.
    pub(crate) plain: bool,
    /// Choosing reads the candidates' kilometres (spreading or weighing
    /// cost by distance), which a bare order leaves out. Set by
    /// [`Host::finish`].
    pub(crate) reads_km: bool,
    /// Its candidates' group in [`super::Steering`], set by
    /// [`super::Steering::new`].
    pub(crate) group: u32,
}

impl Host {
    /// The host with what its queries ask of its shape worked out.
    pub(crate) fn finish(mut self) -> Host {
        self.plain = self.spread_km <= 0.0
            && self.spread_ms <= 0.0
            && self.cost_margin_km <= 0.0
            && self.cost_margin_ms <= 0.0
            && self.partner_share.is_none();
        self.reads_km = self.spread_km > 0.0 || self.cost_margin_km > 0.0;
        self
    }
}

/// A rule matches when every criterion it names matches (empty = any).
#[derive(Debug, Default, PartialEq, Clone)]
pub struct Rule {
    pub continent: Vec<Code>,
    pub country: Vec<Code>,
    pub subdivision: Vec<Code>,
    pub asn: Vec<u32>,
    pub edges: Vec<EdgeIdx>,
    /// Its edges' group in the steering, set by [`super::Steering::new`].
    pub(crate) group: u32,
}

impl Rule {
    pub fn matches(&self, loc: &Location) -> bool {
        fn one<T: PartialEq + Copy>(want: &[T], have: Option<T>) -> bool {
            want.is_empty() || have.is_some_and(|h| want.contains(&h))
        }
        one(&self.continent, loc.continent)
            && one(&self.country, loc.country)
            && one(&self.subdivision, loc.subdivision)
            && one(&self.asn, loc.asn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(continent: &str, country: &str, asn: Option<u32>) -> Location {
        Location {
            continent: Some(Code::parse(continent).unwrap()),
            country: Some(Code::parse(country).unwrap()),
            asn,
            ..Location::default()
        }
    }

    #[test]
    fn a_rule_matches_when_every_criterion_it_names_does() {
        let code = |s: &str| Code::parse(s).unwrap();
        let any = Rule::default();
        assert!(any.matches(&loc("EU", "DE", None)));
        assert!(any.matches(&Location::default()));
        let eu_de = Rule {
            continent: vec![code("EU")],
            country: vec![code("DE"), code("FR")],
            ..Rule::default()
        };
        assert!(eu_de.matches(&loc("EU", "FR", None)));
        assert!(!eu_de.matches(&loc("EU", "GB", None)));
        assert!(!eu_de.matches(&loc("NA", "DE", None)));
        // A criterion the location says nothing about does not match.
        assert!(!eu_de.matches(&Location::default()));
        let asn = Rule {
            asn: vec![64500],
            ..Rule::default()
        };
        assert!(asn.matches(&loc("EU", "DE", Some(64500))));
        assert!(!asn.matches(&loc("EU", "DE", Some(64501))));
        assert!(!asn.matches(&loc("EU", "DE", None)));
    }
}
