//! Image state: pure change tracking (`track`) and its durable SQLite store (`store`, with the
//! notification `outbox`). It records what was seen and what is to be sent; deciding whether
//! something alerts, and sending it, belong to `alert`.

mod error;
pub mod outbox;
mod schema;
pub mod store;
pub mod track;

pub use error::StoreError;
pub use outbox::{NewOutboxRow, OutboxRow};
pub use store::{Commit, DEFAULT_MAX_EVENTS, Store};
pub use track::{ChangeEvent, Field, ImageState, NOT_FOUND, Observed, observe};
