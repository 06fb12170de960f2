//! podgate: a Kubernetes admission webhook guarding Pods and the workloads that stamp them out.
//!
//! The pure core (`policy`, `rules`, `mutate`, `workload`, `image`, `engine`, `admission`,
//! `check`, `sarif`) does no I/O apart from `policy::loader`, which reads policy files. The edges
//! are `cli`, `manifests` (reads manifest files), `certs`, the TLS server and `audit`'s cluster
//! I/O (`audit::cluster`; the rest of `audit` is pure).

pub mod admission;
pub mod audit;
pub mod certs;
pub mod check;
pub mod cli;
pub mod cluster;
pub mod engine;
pub mod image;
pub mod lean;
pub(crate) mod managed;
pub mod manifests;
pub(crate) mod mutate;
pub mod pod;
pub mod policy;
pub mod rules;
pub(crate) mod sarif;
pub mod server;
pub mod verdict;
pub mod workload;
