//! RFC 1035 master-file loading with file:line errors.
