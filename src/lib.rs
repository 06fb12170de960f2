//! podgate: a Kubernetes admission webhook guarding Pods and the workloads that stamp them out.
//!
//! The pure core (`policy`, `rules`, `mutate`, `workload`, `image`, `admission`) does no I/O
//! apart from `policy::loader`, which reads policy files. The TLS server lives in `server`.

pub mod certs;
pub mod image;
pub mod rules;
pub mod server;
