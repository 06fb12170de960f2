//! The pure decisions behind `podgate serve --manage-webhooks` (issue #10): what the
//! certificate Secret holds and whether it is usable (`material`), when to renew or rotate
//! (`rotation`), the webhook configurations podgate writes (`spec`) and whether the cluster's
//! copies drifted from them (`drift`).
//!
//! No I/O here: no kube client, no files, no clock (callers pass `now` as Unix seconds). The
//! cluster edge that reads and writes these values is `crate::cluster`.

pub mod drift;
pub mod material;
pub mod rotation;
pub mod spec;
