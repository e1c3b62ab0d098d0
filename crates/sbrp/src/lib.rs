//! SBRP v1 (work in progress).
