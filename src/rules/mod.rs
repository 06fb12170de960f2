//! Validation rules: one rule family per file, pure functions over a pod spec.

pub mod shell;
