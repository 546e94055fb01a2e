//! exwatch: watches cryptocurrency exchange APIs and tells on-call engineers
//! what goes wrong before the trading systems notice.

pub mod alert;
pub mod bench;
pub mod breaker;
pub mod check;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod detect;
pub mod exchange;
pub mod headless;
pub mod http;
pub mod journal;
pub mod limiter;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod monitor;
pub mod pacing;
pub mod paths;
pub mod probe;
pub mod problems;
pub mod redis_link;
pub mod replay;
pub mod report;
pub mod retry;
pub mod secrets;
pub mod sim;
pub mod state;
pub mod stream;
pub mod ui;
pub mod units;
