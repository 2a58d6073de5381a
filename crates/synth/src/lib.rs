//! openpalm-synth (being written).
