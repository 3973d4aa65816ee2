//! The immutable runtime state (zones, steering, GeoIP DB), swapped whole.
