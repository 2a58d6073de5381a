//! openpalm-gallery (being written).
