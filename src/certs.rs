//! Development and cluster certificates for the webhook server.
