//! Alerts: the notification payload, channels that deliver it (email, webhooks,
//! Alertmanager), the pure alert rules and the outbox delivery worker.

pub mod channel;
pub mod deliver;
pub mod notification;
pub mod rules;

pub use notification::{Notification, NotificationKind};
