//! Share envelopes: AES-256-GCM under a key-encryption key (spec §10). Work in progress.
