//! Templates for scale: [`template_stream`] runs many synthetic identities through the
//! engine's real extraction, streamed in chunks so that no more than one chunk of images is
//! ever in memory (about 140 templates/s on 2 cores: hours for a million).

use crate::error::SynthError;
use crate::generator::{Generator, Kind};
use crate::render::Band;
use openpalm_engine::{Engine, ExtractError, InputKind, Template};
use rayon::prelude::*;
use std::collections::VecDeque;

/// Streams `Result<Template, ExtractError>` for identities `0..count`, in order: one
/// enrolment capture (sample 0) per identity, rendered as an ROI and extracted with
/// [`Engine::extract_capture`]. Work is done in parallel one chunk at a time.
pub struct TemplateStream<'e> {
    engine: &'e Engine,
    generator: Generator,
    next: u64,
    end: u64,
    chunk: usize,
    buf: VecDeque<Result<Template, ExtractError>>,
}

/// Templates of `count` synthetic identities (ROI kind; the generator's kind is ignored).
pub fn template_stream<'e>(
    engine: &'e Engine,
    generator: &Generator,
    count: u64,
) -> Result<TemplateStream<'e>, SynthError> {
    if count == 0 {
        return Err(SynthError::ZeroIdentities);
    }
    generator.difficulty.validate().map_err(SynthError::Difficulty)?;
    let mut generator = generator.clone();
    generator.kind = Kind::Roi;
    Ok(TemplateStream {
        engine,
        generator,
        next: 0,
        end: count,
        chunk: 1024,
        buf: VecDeque::new(),
    })
}

impl TemplateStream<'_> {
    /// Identities processed per parallel chunk (memory use is one chunk of templates).
    pub fn with_chunk(mut self, chunk: usize) -> Self {
        self.chunk = chunk.max(1);
        self
    }

    fn fill(&mut self) {
        let stop = (self.next + self.chunk as u64).min(self.end);
        let g = &self.generator;
        let engine = self.engine;
        let out: Vec<_> = (self.next..stop)
            .into_par_iter()
            .map(|i| {
                let p = g.identity_for(i, &[Band::Visible]);
                let s = g.sample(i, 0, 1);
                let img = g.render(&p, &s, Band::Visible);
                engine
                    .extract_capture(&img.to_capture(), InputKind::Roi)
                    .map(|e| e.template)
            })
            .collect();
        self.buf.extend(out);
        self.next = stop;
    }
}

impl Iterator for TemplateStream<'_> {
    type Item = Result<Template, ExtractError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() && self.next < self.end {
            self.fill();
        }
        self.buf.pop_front()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.buf.len() + (self.end - self.next) as usize;
        (n, Some(n))
    }
}
