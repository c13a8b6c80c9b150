//! Alerts: the notification payload, channels that deliver it (email, webhooks,
//! Alertmanager), and later the rules and the durable outbox.

pub mod channel;
pub mod notification;

pub use notification::{Notification, NotificationKind};
