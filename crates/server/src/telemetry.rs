//! Logs: `tracing`, as text or one JSON object per line (`log_format`), filtered like
//! `RUST_LOG` (default `info`). Every request runs in a span `request` carrying its
//! `request_id`, `method` and matched `route` (see [`crate::api`]), so every line logged
//! while it is handled names the request.

use crate::config::LogFormat;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// The filter: `RUST_LOG` if set and valid, else `default` (e.g. `info`).
pub fn env_filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
}

/// A subscriber writing to `writer` in `format`, filtered by `filter`.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => Box::new(b.finish()),
        LogFormat::Json => Box::new(
            b.json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .finish(),
        ),
    }
}

/// Install the process's subscriber (standard error), `RUST_LOG` or else `info`; false if
/// one was installed already.
pub fn init(format: LogFormat) -> bool {
    init_with_default(format, "info")
}

/// [`init`] with another level when `RUST_LOG` is not set.
pub fn init_with_default(format: LogFormat, default: &str) -> bool {
    tracing::subscriber::set_global_default(subscriber(format, env_filter(default), std::io::stderr)).is_ok()
}
