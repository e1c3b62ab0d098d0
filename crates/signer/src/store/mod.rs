//! Persisted signer state on sqlx (spec §9). Work in progress.
