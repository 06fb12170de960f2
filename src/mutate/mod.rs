//! Mutations: edit a typed working copy of the pod spec and emit the JSON Patch operations
//! that make the same edit on the raw object.
//!
//! Operations are emitted against the state the previous operations left (JSON Patch applies
//! them in order), touch only the fields they mean to change, and follow evanphx/json-patch v4
//! rules: an `add` needs its parent, so a missing list is added whole. Raw fields that
//! k8s-openapi does not know are never rewritten, because no operation replaces a parent.

pub mod host_aliases;
pub mod pull_policy;

use json_patch::PatchOperation;

use crate::rules::Violation;

/// What one mutation did to the working copy.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Mutation {
    /// JSON Patch operations, in order.
    pub ops: Vec<PatchOperation>,
    /// One line per change made, for `podgate check` and audit annotations.
    pub changes: Vec<String>,
    /// Things the user should hear about (admission warnings under Enforce and Warn).
    pub notes: Vec<String>,
    /// Conflicts that a policy turned into violations (`onConflict: Deny`).
    pub violations: Vec<Violation>,
}
