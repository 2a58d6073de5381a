//! Image decoding (the engine's entry point for capture bytes): any byte string is a
//! capture within the size limits or a typed error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openpalm_engine::capture::{decode, MAX_SIDE, MIN_SIDE};

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = decode(data) {
        let (w, h) = (c.width() as u32, c.height() as u32);
        assert!((MIN_SIDE..=MAX_SIDE).contains(&w) && (MIN_SIDE..=MAX_SIDE).contains(&h));
        assert_eq!(c.r.data.len(), (w * h) as usize);
    }
});
