//! `<zone>.load.yaml`: loads pushed as a file drive overload like the API
//! does, and a bad load file is rejected whole with file:line, keeping the
//! last good state.

use crate::support;

use std::path::Path;
use std::sync::Arc;

use geosteer::Reloader;
use geosteer::ServerConfig;
use geosteer::{Effective, Registry};
use support::server::write_zone_dir;

fn setup(dir: &Path) -> ServerConfig {
    let cfg = write_zone_dir(
        dir,
        "t.example",
        "edges:\n  near: { addresses: [192.0.2.1], location: [51.5, -0.1] }\n  far: { addresses: [192.0.2.2], location: [50.1, 8.7] }\nhosts:\n  www: {}\n",
        "zones: zones\nwatch: false\n",
    );
    ServerConfig::load(&cfg).unwrap()
}

fn effective(r: &Registry, edge: &str) -> Effective {
    r.get("t.example.", edge).expect("edge exists").effective()
}

#[test]
fn load_file_overloads_and_bad_one_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path());
    let load = dir.path().join("zones/t.example.load.yaml");
    std::fs::write(&load, "near: { load: 0.95, ttl: 60s }\n").unwrap();
    let registry = Arc::new(Registry::new());
    let r = Reloader::new(cfg, registry.clone(), None).unwrap();
    assert_eq!(effective(&registry, "near"), Effective::Overloaded);
    assert_eq!(effective(&registry, "far"), Effective::Up);

    // Bad: unknown edge, load out of range, unknown key. Each is rejected
    // with its line, and the previous generation keeps serving.
    for (text, line, what) in [
        (
            "near: { load: 0.5, ttl: 60s }\nnope: { load: 0.5, ttl: 60s }\n",
            2,
            "nope: unknown edge",
        ),
        ("near: { load: 1.5, ttl: 60s }\n", 1, "not within 0..1"),
        (
            "near: { load: 0.5, ttl: 60s, extra: 1 }\n",
            1,
            "near: unknown key `extra`",
        ),
    ] {
        std::fs::write(&load, text).unwrap();
        let before = r.shared().load().generation;
        let errs = r.reload("test").expect_err(text);
        let msg = errs.to_string();
        let want = format!("{}:{line}: ", load.display());
        assert!(msg.starts_with(&want) && msg.contains(what), "{msg}");
        assert_eq!(r.shared().load().generation, before, "old snapshot kept");
        assert!(!r.status().ok);
        // The load fed by the last good file still stands.
        assert_eq!(effective(&registry, "near"), Effective::Overloaded);
    }

    // A good file again: a low load brings the edge back at once.
    std::fs::write(&load, "near: { load: 0.1, ttl: 60s }\n").unwrap();
    r.reload("test").unwrap();
    registry.refresh();
    assert_eq!(effective(&registry, "near"), Effective::Up);
}
