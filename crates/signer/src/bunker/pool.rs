//! Bunker: pool (work in progress).
