//! The simulated project's images: lookup, ListImage filtering and paging, control edits.
//! Plain data, no HTTP, no clock (callers pass `now`).

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::cloud::model::{Image, ImageList};

/// ListImage's largest page.
pub const MAX_PAGE: usize = 200;

/// The images, ordered by id so paging is stable.
#[derive(Debug, Default)]
pub(crate) struct Store {
    images: BTreeMap<String, Image>,
    /// Ids whose absence answers 400 + `ModelArts.6404` instead of 404.
    gone_as_400: HashSet<String>,
}

/// A partial update of one image (`PATCH /_sim/images/{id}`). `update_at` defaults to now.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImagePatch {
    pub status: Option<String>,
    pub size: Option<u64>,
    pub update_at: Option<i64>,
    pub name: Option<String>,
    pub status_message: Option<String>,
    /// When true, once the image is gone it answers 400 + `ModelArts.6404` instead of 404.
    pub not_found_as_400: Option<bool>,
}

/// ListImage query parameters (the documented ones; others are ignored).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    pub limit: Option<usize>,
    pub offset: Option<usize>,
    #[serde(rename = "type")]
    pub image_type: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub name_fuzzy_match: Option<bool>,
    pub service_type: Option<String>,
    pub workspace_id: Option<String>,
}

impl Store {
    pub(crate) fn new(images: Vec<Image>) -> Self {
        let mut store = Self::default();
        for img in images {
            store.put(img);
        }
        store
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Image> {
        self.images.get(id)
    }

    pub(crate) fn gone_as_400(&self, id: &str) -> bool {
        self.gone_as_400.contains(id)
    }

    pub(crate) fn all(&self) -> Vec<Image> {
        self.images.values().cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.images.len()
    }

    /// Adds or replaces an image; an image without id is ignored (returns false).
    pub(crate) fn put(&mut self, img: Image) -> bool {
        let Some(id) = img.id.clone() else {
            return false;
        };
        self.images.insert(id, img);
        true
    }

    pub(crate) fn delete(&mut self, id: &str) -> bool {
        self.images.remove(id).is_some()
    }

    /// Applies `patch`; `now_ms` becomes `update_at` unless the patch sets it.
    pub(crate) fn patch(&mut self, id: &str, patch: &ImagePatch, now_ms: i64) -> Option<Image> {
        if let Some(flag) = patch.not_found_as_400 {
            if flag {
                self.gone_as_400.insert(id.to_string());
            } else {
                self.gone_as_400.remove(id);
            }
        }
        let img = self.images.get_mut(id)?;
        if let Some(s) = &patch.status {
            img.status = Some(s.clone());
        }
        if let Some(s) = patch.size {
            img.size = Some(s);
        }
        if let Some(n) = &patch.name {
            img.name = Some(n.clone());
        }
        if let Some(m) = &patch.status_message {
            img.status_message = Some(m.clone());
        }
        img.update_at = Some(patch.update_at.unwrap_or(now_ms));
        Some(img.clone())
    }

    /// One ListImage page. `type` defaults to `BUILD_IN`, as the real API does.
    pub(crate) fn list(&self, q: &ListQuery) -> ImageList {
        let limit = q.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
        let offset = q.offset.unwrap_or(0);
        let want_type = q.image_type.as_deref().unwrap_or("BUILD_IN");
        let fuzzy = q.name_fuzzy_match.unwrap_or(false);
        let matches = |img: &&Image| {
            eq(img.image_type.as_ref(), Some(want_type))
                && opt_eq(img.namespace.as_ref(), q.namespace.as_deref())
                && opt_eq(img.service_type.as_ref(), q.service_type.as_deref())
                && opt_eq(img.workspace_id.as_ref(), q.workspace_id.as_deref())
                && match (q.name.as_deref(), img.name.as_deref()) {
                    (None, _) => true,
                    (Some(want), Some(have)) if fuzzy => have.contains(want),
                    (Some(want), have) => have == Some(want),
                }
        };
        let mut total = 0u64;
        let mut data = Vec::new();
        for img in self.images.values().filter(matches) {
            let index = usize::try_from(total).unwrap_or(usize::MAX);
            if index >= offset && data.len() < limit {
                data.push(img.clone());
            }
            total += 1;
        }
        let limit64 = limit as u64;
        ImageList {
            total: Some(total),
            current: Some((offset / limit) as u64),
            pages: Some(total.div_ceil(limit64)),
            size: Some(limit64),
            data,
        }
    }
}

fn eq(have: Option<&String>, want: Option<&str>) -> bool {
    have.map(String::as_str) == want
}

/// A filter that is not given matches everything.
fn opt_eq(have: Option<&String>, want: Option<&str>) -> bool {
    want.is_none() || eq(have, want)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::config::generate_images;

    fn q(limit: usize, offset: usize) -> ListQuery {
        ListQuery {
            limit: Some(limit),
            offset: Some(offset),
            image_type: Some("DEDICATED".into()),
            ..ListQuery::default()
        }
    }

    #[test]
    fn pages_cover_every_image_once() {
        let store = Store::new(generate_images(45));
        let mut seen = Vec::new();
        let mut offset = 0;
        loop {
            let page = store.list(&q(20, offset));
            assert_eq!(page.total, Some(45));
            assert_eq!(page.pages, Some(3));
            if page.data.is_empty() {
                break;
            }
            offset += page.data.len();
            seen.extend(page.data.into_iter().map(|i| i.id.unwrap()));
        }
        assert_eq!(seen.len(), 45);
        seen.dedup();
        assert_eq!(seen.len(), 45);
    }

    #[test]
    fn type_defaults_to_build_in_and_filters_apply() {
        let mut store = Store::new(generate_images(5));
        assert_eq!(store.list(&ListQuery::default()).total, Some(0));
        store.patch(
            "00000003-0000-4000-8000-000000000003",
            &ImagePatch {
                name: Some("special-one".into()),
                ..ImagePatch::default()
            },
            5,
        );
        let mut query = q(10, 0);
        query.name = Some("special".into());
        assert_eq!(store.list(&query).total, Some(0));
        query.name_fuzzy_match = Some(true);
        assert_eq!(store.list(&query).total, Some(1));
        query.namespace = Some("other".into());
        assert_eq!(store.list(&query).total, Some(0));
    }

    #[test]
    fn patch_bumps_update_at_unless_given() {
        let mut store = Store::new(generate_images(1));
        let id = "00000000-0000-4000-8000-000000000000";
        let img = store
            .patch(
                id,
                &ImagePatch {
                    status: Some("ERROR".into()),
                    ..ImagePatch::default()
                },
                42,
            )
            .unwrap();
        assert_eq!(
            (img.status.as_deref(), img.update_at),
            (Some("ERROR"), Some(42))
        );
        let img = store
            .patch(
                id,
                &ImagePatch {
                    update_at: Some(7),
                    ..ImagePatch::default()
                },
                42,
            )
            .unwrap();
        assert_eq!(img.update_at, Some(7));
        assert!(store.patch("nope", &ImagePatch::default(), 1).is_none());
    }
}
