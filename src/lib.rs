//! podgate: a Kubernetes admission webhook guarding Pods and the workloads that stamp them out.
//!
//! The pure core (`policy`, `rules`, `mutate`, `workload`, `image`, `admission`) does no I/O
//! apart from `policy::loader`, which reads policy files. The TLS server lives in `server`;
//! `manifests` reads manifest files and standard input for the offline `podgate check`.

pub mod certs;
pub mod image;
pub mod manifests;
pub mod rules;
