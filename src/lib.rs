//! modelarts-image-exporter: watches ModelArts images, exports their state to Prometheus and
//! pages on-call when one fails or vanishes.
//!
//! `app` is the only module that knows every other one; the binary is a thin shell over it.
//! Pure decision logic lives in `state::track`, `alert::rules` and `condition`; I/O at the
//! edges (`cloud`, `state::store`, `alert::channel`, `http`).

pub mod alert;
pub mod app;
pub mod cli;
pub mod cloud;
pub mod condition;
pub mod config;
pub mod demo;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod once;
pub mod sdnotify;
pub mod sim;
pub mod state;
pub mod text;
pub mod watch;
