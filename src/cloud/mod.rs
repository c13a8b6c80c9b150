//! Everything that talks to (or describes) the ModelArts and IAM APIs: validated ids, the
//! tolerant answer model, error classification, AK/SK signing, IAM tokens and the HTTP client.

pub mod auth;
pub mod client;
pub mod error;
pub mod http;
pub mod ids;
pub mod model;
pub mod sign;

pub use client::{ListFilter, ModelArtsClient, RequestObserver, ensure_crypto_provider};
pub use error::{ApiError, ApiErrorKind};
pub use ids::{ImageId, ProjectId, Region};
pub use model::{Image, ImageList, ImageStatus};
