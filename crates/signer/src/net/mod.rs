//! Node links: coordinator ↔ node over SHS with mutually pinned keys (spec §8). Work in progress.
