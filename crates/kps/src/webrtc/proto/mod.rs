//! Sans-IO WebRTC engine for KPS (work in progress).
