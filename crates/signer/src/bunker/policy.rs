//! Bunker: policy (work in progress).
