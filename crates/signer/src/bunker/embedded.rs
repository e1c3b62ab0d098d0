//! Bunker: embedded (work in progress).
