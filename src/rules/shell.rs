//! Shell analysis: finds writes to /etc/hosts in commands and scripts.
//! PLACEHOLDER on main until the shell branch lands: finds nothing.

/// One write to /etc/hosts found in a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsWrite {
    /// How the file is written.
    pub how: String,
    /// The entries written when they are literal text.
    pub entries: Vec<HostEntry>,
}

/// One hosts-file line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    /// The address.
    pub ip: String,
    /// The names.
    pub hostnames: Vec<String>,
}

/// Finds writes to /etc/hosts.
pub fn find_hosts_writes(_argv: &[String], _known_program: bool) -> Vec<HostsWrite> {
    Vec::new()
}
