//! Bunker: engine (work in progress).
