//! The template parser: any byte string is a template or a typed error, never a panic. A
//! template that parses is canonical (writing it back gives the same bytes) and compares
//! with itself without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openpalm_engine::{Engine, Template};
use std::sync::OnceLock;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(Engine::default)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Template::from_bytes(data) {
        assert_eq!(t.to_bytes(), data, "a parsed template writes back to other bytes");
        assert_eq!(Template::from_bytes(&t.to_bytes()).as_ref(), Ok(&t));
        let score = engine().score(&t, &t);
        assert!((0.0..=1.0).contains(&score) || score.is_nan(), "score {score}");
        let _ = engine().prepare(&t);
    }
});
