//! podgate: a Kubernetes admission webhook guarding Pods and the workloads that stamp them out.
//!
//! The pure core (`policy`, `rules`, `mutate`, `workload`, `image`, `engine`, `admission`,
//! `check`) does no I/O apart from `policy::loader`, which reads policy files. The edges are
//! `cli`, `manifests` (reads manifest files), `certs` and the TLS server.

pub mod admission;
pub mod certs;
pub mod check;
pub mod cli;
pub mod cluster;
pub mod engine;
pub mod image;
pub mod managed;
pub mod manifests;
pub mod mutate;
pub mod pod;
pub mod policy;
pub mod rules;
pub mod server;
pub mod workload;
