//! Locating a client: MaxMind-format database reader and writer.
