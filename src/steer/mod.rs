//! Choosing edges: candidates, health filter, distance order, spreading.
