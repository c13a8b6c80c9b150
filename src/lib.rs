//! modelarts-image-exporter: watches ModelArts images, exports their state to Prometheus and
//! pages on-call when one fails or vanishes.
//!
//! `app` is the only module that knows every other one; the binary is a thin shell over it.

pub mod alert;
pub mod cloud;
pub mod condition;
pub mod config;
pub mod metrics;
pub mod sim;
pub mod state;
