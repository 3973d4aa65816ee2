//! What the last build found, for `/api/status` and logs.

/// The outcome of the last build, for `/api/status` and logs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadStatus {
    /// No file has a problem now.
    pub ok: bool,
    /// Unix time of the attempt.
    pub at: u64,
    pub trigger: String,
    pub generation: u64,
    pub duration_ms: f64,
    /// Every problem now, as `geosteer check` prints them.
    pub errors: Vec<String>,
    /// The zones whose files did not load, one by one.
    pub zones: Vec<ZoneFailure>,
}

/// A zone whose files, as they are now, did not load.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ZoneFailure {
    pub zone_file: std::path::PathBuf,
    /// Its last good copy serves (else its queries get SERVFAIL).
    pub serving_last_good: bool,
    pub errors: Vec<String>,
}
