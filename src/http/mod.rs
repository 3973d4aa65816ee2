//! HTTP listener: metrics, admin API, health of the server itself.
