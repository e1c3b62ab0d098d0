//! Bunker: store (work in progress).
