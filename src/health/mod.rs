//! Edge health: probes, state machine, admin overrides and load feed.
