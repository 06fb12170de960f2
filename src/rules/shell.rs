//! Shell analysis: finds writes to /etc/hosts in commands and scripts.
