//! `[metrics]` in the config: where `/metrics` is served, and the errors of
//! binding it.

use serde::Deserialize;
use std::net::SocketAddr;

/// `[metrics]` in the config.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Where to serve `/metrics`, e.g. `127.0.0.1:9464`. Off when absent.
    pub listen: Option<SocketAddr>,
    /// Permit `0.0.0.0` / `::`: the endpoint tells anyone who can reach it
    /// which exchanges this desk watches, so every interface must be a choice.
    pub allow_wildcard: bool,
}

impl MetricsSettings {
    /// Refuse a wildcard `listen` unless `allow_wildcard` says it is on purpose.
    pub fn validate(&self, p: &mut crate::problems::Problems) {
        if let Some(addr) = self.listen
            && addr.ip().is_unspecified()
            && !self.allow_wildcard
        {
            p.push(
                "metrics.listen",
                format!(
                    "{addr} listens on every interface: use a specific address such as 127.0.0.1:{port}, \
                     or set metrics.allow_wildcard = true to expose the metrics on purpose",
                    port = addr.port()
                ),
            );
        }
    }
}

/// Why the metrics endpoint could not start. The message carries the OS's
/// words, so they are not also its `source()` (a chain would repeat them).
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The address is taken, or not ours to bind.
    #[error("cannot listen for /metrics on {addr}: {error}")]
    Bind {
        /// The `[metrics] listen` address.
        addr: SocketAddr,
        /// What the OS said.
        error: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listen_needs_allow_wildcard() {
        let mut p = crate::problems::Problems::default();
        MetricsSettings {
            listen: Some("0.0.0.0:9464".parse().expect("addr")),
            allow_wildcard: false,
        }
        .validate(&mut p);
        MetricsSettings {
            listen: Some("[::]:9464".parse().expect("addr")),
            allow_wildcard: false,
        }
        .validate(&mut p);
        assert_eq!(p.0.len(), 2);
        assert_eq!(p.0[0].0, "metrics.listen");
        let mut ok = crate::problems::Problems::default();
        MetricsSettings {
            listen: Some("0.0.0.0:9464".parse().expect("addr")),
            allow_wildcard: true,
        }
        .validate(&mut ok);
        MetricsSettings {
            listen: Some("127.0.0.1:9464".parse().expect("addr")),
            allow_wildcard: false,
        }
        .validate(&mut ok);
        assert!(ok.0.is_empty());
    }
}
