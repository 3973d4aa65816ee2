//! Transports: UDP worker threads and TCP (RFC 7766). No DNS logic here.
