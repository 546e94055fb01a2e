//! `exwatch bench`: every benchmark the binary can run, in one room.
//!
//! - [`pipeline`]: the whole poll path (limiter, breaker, HTTP, adapters,
//!   validation) against the simulator, in requests per second.
//! - [`limiter`]: decisions per second of the memory and Redis limiters.
//! - [`detect`]: detection precision, recall and time to alert over a
//!   scripted fault cycle.
//! - [`stream`]: book messages parsed, applied and integrity-checked per
//!   second on one core, per exchange shape, over a local WebSocket.
//!
//! Criterion benchmarks of single functions live in `benches/`.

pub mod detect;
pub mod limiter;
pub mod pipeline;
pub mod stream;

pub use pipeline::{peak_rss_kib, pipeline};
