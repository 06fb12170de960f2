//! podgate: a Kubernetes admission webhook guarding Pods and the workloads that stamp them out.
//!
//! The pure core (`policy`, `rules`, `mutate`, `workload`, `image`, `admission`) does no I/O
//! apart from `policy::loader`, which reads policy files. The TLS server lives in `server`.

pub mod admission;
pub mod certs;
pub mod engine;
pub mod image;
pub mod mutate;
pub mod pod;
pub mod policy;
pub mod rules;
pub mod server;
pub mod workload;
