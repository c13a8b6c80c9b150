//! Prometheus metrics: one owned registry, grouped in one struct.
