//! Edge health: probes, state machine, admin overrides and load feed.
//! (Placeholder on main until the health branch lands.)

/// Effective state as steering sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effective {
    Up,
    Overloaded,
    Drain,
    Down,
}

/// Placeholder: always up.
#[derive(Debug, Default)]
pub struct EdgeHealth;

impl EdgeHealth {
    pub fn effective(&self) -> Effective {
        Effective::Up
    }
}
