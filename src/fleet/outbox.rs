//! Local changes (admin overrides, load readings) on their way to etcd.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

use super::values::EdgeKey;
use crate::clock::unix_now_ms;
use crate::health::{AdminNote, AdminState, LocalChanges};

/// A local change waiting to be written, coalesced per edge: only the
/// latest override and the latest load reading matter.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Pending {
    Admin(AdminState, AdminNote),
    Load { load: f64, until_ms: u64 },
}

/// Local changes on their way to etcd. Survives sessions, so a drain made
/// while etcd was down is written when it is back.
#[derive(Default)]
pub(super) struct Outbox {
    pending: Mutex<BTreeMap<(EdgeKey, bool), Pending>>,
    pub(super) notify: Notify,
}

impl Outbox {
    fn push(&self, zone: &str, edge: &str, p: Pending) {
        let is_load = matches!(p, Pending::Load { .. });
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(((zone.to_owned(), edge.to_owned()), is_load), p);
        self.notify.notify_one();
    }

    pub(super) fn take(&self) -> Vec<(EdgeKey, Pending)> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
            .into_iter()
            .map(|((k, _), p)| (k, p))
            .collect()
    }

    /// Puts back what could not be written, unless a newer change came in.
    pub(super) fn restore(&self, items: Vec<(EdgeKey, Pending)>) {
        let mut m = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for (k, p) in items {
            let is_load = matches!(p, Pending::Load { .. });
            m.entry((k, is_load)).or_insert(p);
        }
    }
}

impl LocalChanges for Outbox {
    fn admin(&self, zone: &str, edge: &str, admin: AdminState, note: &AdminNote) {
        self.push(zone, edge, Pending::Admin(admin, note.clone()));
    }

    fn load(&self, zone: &str, edge: &str, load: f64, ttl: Duration) {
        let until_ms = unix_now_ms().saturating_add(ttl.as_millis().min(u64::MAX as u128) as u64);
        self.push(zone, edge, Pending::Load { load, until_ms });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_coalesces_and_keeps_newer_on_restore() {
        let o = Outbox::default();
        o.admin("z.", "e", AdminState::Drain, &AdminNote::default());
        o.admin("z.", "e", AdminState::Auto, &AdminNote::default());
        o.load("z.", "e", 0.5, Duration::from_secs(60));
        let items = o.take();
        assert_eq!(items.len(), 2);
        assert!(
            items
                .iter()
                .any(|(_, p)| *p == Pending::Admin(AdminState::Auto, AdminNote::default()))
        );
        o.admin("z.", "e", AdminState::Down, &AdminNote::default());
        o.restore(items);
        let again = o.take();
        assert!(
            again
                .iter()
                .any(|(_, p)| *p == Pending::Admin(AdminState::Down, AdminNote::default()))
        );
        assert_eq!(again.len(), 2);
    }
}
