//! Image state: pure change tracking (`track`) and its durable SQLite store (`store`).
//! Decisions about alerts live in `alert`; this module only records what was seen.

pub mod track;

pub use track::{ChangeEvent, Field, ImageState, NOT_FOUND, Observed, observe};
