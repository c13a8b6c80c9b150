//! Pure change tracking (PRODUCT 3.2): (previous state, one poll result, now) → (new state,
//! change events). It must not do I/O, read the clock or log: the caller persists and reports.
//!
//! Rules, in short:
//! - A valid answer is a 200 carrying a status and the asked-for id, or a not-found answer.
//! - A 200 updates the fields it tells; a missing/null field is "not told" and keeps the last
//!   value (never a change to null).
//! - A change of status, size or update_at after first sight is a [`ChangeEvent`] with the
//!   image's next sequence number. The status compared is the *effective* status, so entering
//!   and leaving not-found are status events (`ACTIVE → NOT_FOUND`, `NOT_FOUND → ACTIVE`).
//! - First sight (no valid answer recorded yet) sets `first_seen` and emits **no** event: a new
//!   image or a fresh database is not a change. The alert rules fire on first sight from the
//!   state itself ([`ImageState::effective_status`]).
//! - Transient and config/auth errors never touch status, size or update_at and never emit
//!   events: they bump `consecutive_failures` and set `last_error`.

use serde::{Deserialize, Serialize};

use crate::cloud::{ApiError, ApiErrorKind, Image, ImageId};

/// The effective status of an image that answered not-found.
pub const NOT_FOUND: &str = "NOT_FOUND";

/// What the watcher knows about one image. Persisted as JSON: new fields must default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageState {
    pub id: String,
    pub name: Option<String>,
    /// Last API status seen in a 200 (verbatim; an unknown value is kept as it came).
    pub status: Option<String>,
    pub status_message: Option<String>,
    pub size_bytes: Option<u64>,
    /// UTC milliseconds.
    pub create_at: Option<i64>,
    /// UTC milliseconds.
    pub update_at: Option<i64>,
    pub swr_path: Option<String>,
    pub arch: Option<String>,
    pub image_type: Option<String>,
    pub service_type: Option<String>,
    pub origin: Option<String>,
    pub visibility: Option<String>,
    pub namespace: Option<String>,
    pub tag: Option<String>,
    pub workspace_id: Option<String>,
    /// Not-found answers in a row (0 after a 200). Errors in between neither reset nor bump it.
    pub consecutive_not_found: u32,
    /// Failed polls (transient, config or auth errors) in a row; 0 after a valid answer.
    pub consecutive_failures: u32,
    /// Unix seconds of the first valid answer (200 or not-found). `None`: never answered.
    pub first_seen: Option<i64>,
    /// Unix seconds of the last 200: when the image was last seen to exist.
    pub last_seen: Option<i64>,
    /// Unix seconds of the last change event.
    pub last_change: Option<i64>,
    /// Unix seconds of the last valid answer (200 or not-found): the poll worked.
    pub last_success: Option<i64>,
    /// Bounded reason (`ApiErrorKind::reason`) of the current failure streak; cleared by a
    /// valid answer.
    pub last_error: Option<String>,
    /// Sequence number the next change event of this image gets (starts at 1).
    pub next_seq: u64,
}

impl ImageState {
    /// A state for an image never polled.
    pub fn new(id: &ImageId) -> Self {
        Self {
            id: id.as_str().to_string(),
            next_seq: 1,
            ..Self::default()
        }
    }

    /// `"NOT_FOUND"` while the image answers not-found, else the last API status.
    pub fn effective_status(&self) -> Option<&str> {
        if self.consecutive_not_found > 0 {
            Some(NOT_FOUND)
        } else {
            self.status.as_deref()
        }
    }
}

/// Which tracked field a [`ChangeEvent`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// Effective status (API status or `NOT_FOUND`).
    Status,
    /// Size in bytes.
    Size,
    /// `update_at`, UTC milliseconds.
    UpdateAt,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Size => "size",
            Self::UpdateAt => "update_at",
        }
    }
}

/// One change of one field of one image. The id is deterministic (`{image_id}:{seq}`), so a
/// replay after a crash produces the same ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEvent {
    pub id: String,
    pub image_id: String,
    /// Per-image sequence number, strictly increasing.
    pub seq: u64,
    pub field: Field,
    pub old: Option<String>,
    pub new: Option<String>,
    /// Unix seconds of the observation.
    pub at: i64,
    /// The image's name at the time, if known.
    pub image_name: Option<String>,
}

/// The result of [`observe`]: the new state and the events it caused (maybe none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub state: ImageState,
    pub events: Vec<ChangeEvent>,
}

/// Folds one poll result into an image's state. `now` is unix seconds.
///
/// A 200 without a status, or carrying another image's id, is treated as a decode error
/// (transient), as PRODUCT 2 says, even if the client let it through.
pub fn observe(
    prev: Option<&ImageState>,
    image_id: &ImageId,
    result: &Result<Image, ApiError>,
    now: i64,
) -> Observed {
    let mut state = prev.cloned().unwrap_or_else(|| ImageState::new(image_id));
    if state.next_seq == 0 {
        state.next_seq = 1;
    }
    let first_sight = state.first_seen.is_none();
    let before = Tracked::of(&state);

    match result {
        Ok(img)
            if img.status.is_some() && img.id.as_deref().is_none_or(|i| i == image_id.as_str()) =>
        {
            apply_image(&mut state, img);
            state.consecutive_not_found = 0;
            state.last_seen = Some(now);
            valid_answer(&mut state, now);
        }
        Ok(_) => failure(&mut state, ApiErrorKind::Decode.reason()),
        Err(e) if e.kind == ApiErrorKind::NotFound => {
            state.consecutive_not_found = state.consecutive_not_found.saturating_add(1);
            valid_answer(&mut state, now);
        }
        Err(e) => failure(&mut state, e.kind.reason()),
    }

    let mut events = Vec::new();
    if !first_sight {
        let after = Tracked::of(&state);
        for (field, old, new) in [
            (Field::Status, before.status, after.status),
            (Field::Size, before.size, after.size),
            (Field::UpdateAt, before.update_at, after.update_at),
        ] {
            if old != new {
                let seq = state.next_seq;
                state.next_seq += 1;
                events.push(ChangeEvent {
                    id: format!("{}:{seq}", state.id),
                    image_id: state.id.clone(),
                    seq,
                    field,
                    old,
                    new,
                    at: now,
                    image_name: state.name.clone(),
                });
            }
        }
        if !events.is_empty() {
            state.last_change = Some(now);
        }
    }
    Observed { state, events }
}

/// The three tracked values, rendered as event strings.
struct Tracked {
    status: Option<String>,
    size: Option<String>,
    update_at: Option<String>,
}

impl Tracked {
    fn of(s: &ImageState) -> Self {
        Self {
            status: s.effective_status().map(str::to_string),
            size: s.size_bytes.map(|v| v.to_string()),
            update_at: s.update_at.map(|v| v.to_string()),
        }
    }
}

fn valid_answer(state: &mut ImageState, now: i64) {
    state.first_seen.get_or_insert(now);
    state.last_success = Some(now);
    state.consecutive_failures = 0;
    state.last_error = None;
}

fn failure(state: &mut ImageState, reason: &str) {
    state.consecutive_failures = state.consecutive_failures.saturating_add(1);
    state.last_error = Some(reason.to_string());
}

/// Copies every field the answer told; `None` keeps the last value.
fn apply_image(state: &mut ImageState, img: &Image) {
    fn told<T: Clone>(slot: &mut Option<T>, value: Option<&T>) {
        if let Some(v) = value {
            *slot = Some(v.clone());
        }
    }
    told(&mut state.name, img.name.as_ref());
    told(&mut state.status, img.status.as_ref());
    told(&mut state.status_message, img.status_message.as_ref());
    told(&mut state.size_bytes, img.size_bytes().as_ref());
    told(&mut state.create_at, img.create_at.as_ref());
    told(&mut state.update_at, img.update_at.as_ref());
    told(&mut state.swr_path, img.swr_path.as_ref());
    told(&mut state.arch, img.arch.as_ref());
    told(&mut state.image_type, img.image_type.as_ref());
    told(&mut state.service_type, img.service_type.as_ref());
    told(&mut state.origin, img.origin.as_ref());
    told(&mut state.visibility, img.visibility.as_ref());
    told(&mut state.namespace, img.namespace.as_ref());
    told(&mut state.tag, img.tag.as_ref());
    told(&mut state.workspace_id, img.workspace_id.as_ref());
}

#[cfg(test)]
#[path = "track_tests.rs"]
mod tests;
