//! Image references, parsed as the kubelet and apiserver parse them.
