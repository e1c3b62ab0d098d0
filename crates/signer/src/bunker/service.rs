//! Bunker: service (work in progress).
