//! Image state: pure change tracking and its durable SQLite store.
