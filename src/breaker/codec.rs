//! The text form of a breaker's [`Machine`] in its Redis hash (see
//! [`super::redis`] for the key layout).
//!
//! Fields, all strings: `state` (`closed`/`open`/`half_open`), `generation`,
//! `consecutive_failures`, `trips`, `open_until` and `hold_until` (unix ms),
//! `half_open_successes`, `forced` (`0`/`1`) and `window` (below). Probe
//! leases are not fields: in Redis they are keys of their own.
//!
//! The window is `c:` then one digit per call (bit 0 failure, bit 1 slow),
//! or `t:` then `sec.calls.failures.slow` per second joined by commas.

use super::WindowKind;
use super::machine::Machine;
use super::window::{Slot, Window};
use crate::model::BreakerState;
use std::collections::{HashMap, VecDeque};

impl Window {
    /// Compact text form for the Redis hash: `c:0123` (count) or
    /// `t:1700000000.3.1.0,...` (time).
    pub fn encode(&self) -> String {
        match self.kind {
            WindowKind::Count => {
                let mut out = String::with_capacity(2 + self.slots.len());
                out.push_str("c:");
                for sl in &self.slots {
                    let code = u8::from(sl.failures > 0) | (u8::from(sl.slow > 0) << 1);
                    out.push(char::from(b'0' + code));
                }
                out
            }
            WindowKind::Time => {
                let slots: Vec<String> = self
                    .slots
                    .iter()
                    .map(|sl| format!("{}.{}.{}.{}", sl.sec, sl.calls, sl.failures, sl.slow))
                    .collect();
                format!("t:{}", slots.join(","))
            }
        }
    }

    /// Parse [`Window::encode`]'s output; `None` if it is not that (an
    /// unknown prefix or digit, a slot with more failures or slow calls than
    /// calls, totals past `u32`).
    pub fn decode(text: &str) -> Option<Window> {
        let mut slots = VecDeque::new();
        let kind = if let Some(codes) = text.strip_prefix("c:") {
            for c in codes.bytes() {
                let code = c.checked_sub(b'0').filter(|c| *c <= 3)?;
                slots.push_back(Slot {
                    sec: 0,
                    calls: 1,
                    failures: u32::from(code & 1),
                    slow: u32::from(code >> 1),
                });
            }
            WindowKind::Count
        } else if let Some(parts) = text.strip_prefix("t:") {
            for part in parts.split(',').filter(|p| !p.is_empty()) {
                let mut it = part.split('.');
                let mut next = || it.next().and_then(|v| v.parse::<i64>().ok());
                let (sec, calls, failures, slow) = (next()?, next()?, next()?, next()?);
                let small = |v: i64| u32::try_from(v).ok();
                let slot = Slot {
                    sec,
                    calls: small(calls)?,
                    failures: small(failures)?,
                    slow: small(slow)?,
                };
                if slot.failures > slot.calls || slot.slow > slot.calls {
                    return None;
                }
                slots.push_back(slot);
            }
            WindowKind::Time
        } else {
            return None;
        };
        Window::from_slots(kind, slots)
    }
}

impl Machine {
    /// The fields of the Redis hash (leases excluded: they are keys there).
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("state", self.state.as_str().to_string()),
            ("generation", self.generation.to_string()),
            (
                "consecutive_failures",
                self.consecutive_failures.to_string(),
            ),
            ("trips", self.trips.to_string()),
            ("open_until", self.open_until_ms.to_string()),
            ("hold_until", self.hold_until_ms.to_string()),
            ("half_open_successes", self.half_open_successes.to_string()),
            ("forced", u8::from(self.forced).to_string()),
            ("window", self.window.encode()),
        ]
    }

    /// Rebuild from the Redis hash; an empty hash (no `state`) is a fresh
    /// breaker.
    ///
    /// # Errors
    /// A message naming the first field that is missing or unreadable.
    pub fn from_fields(fields: &HashMap<String, String>) -> Result<Machine, String> {
        let mut m = Machine::default();
        if !fields.contains_key("state") {
            return Ok(m);
        }
        fn num<T: std::str::FromStr>(f: &HashMap<String, String>, k: &str) -> Result<T, String> {
            let v = f.get(k).ok_or_else(|| format!("field {k} missing"))?;
            v.parse()
                .map_err(|_| format!("field {k} is not a number: {v:?}"))
        }
        let state = fields.get("state").map(String::as_str);
        m.state = state
            .and_then(|s| s.parse::<BreakerState>().ok())
            .ok_or_else(|| format!("field state is {state:?}"))?;
        m.generation = num(fields, "generation")?;
        m.consecutive_failures = num(fields, "consecutive_failures")?;
        m.trips = num(fields, "trips")?;
        m.open_until_ms = num(fields, "open_until")?;
        m.hold_until_ms = num(fields, "hold_until")?;
        m.half_open_successes = num(fields, "half_open_successes")?;
        m.forced = num::<u8>(fields, "forced")? == 1;
        let w = fields.get("window").map(String::as_str).unwrap_or("c:");
        m.window =
            Window::decode(w).ok_or_else(|| format!("field window is not a window: {w:?}"))?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::BreakerSettings;
    use crate::breaker::machine::tests::{T0, call, fail, ok, settings};

    #[test]
    fn fields_round_trip() {
        for kind in [WindowKind::Count, WindowKind::Time] {
            let s = BreakerSettings {
                window_kind: kind,
                consecutive_failures: 100,
                min_calls: 100,
                ..settings()
            };
            let mut m = Machine::default();
            for i in 0..7 {
                let r = if i % 3 == 0 { fail() } else { ok() };
                call(&mut m, &s, r, T0 + i * 700);
            }
            m.force_open();
            let fields: HashMap<String, String> = m
                .to_fields()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            let back = Machine::from_fields(&fields).expect("decodes");
            assert_eq!(
                back,
                Machine {
                    leases: vec![],
                    next_token: 1,
                    ..m.clone()
                }
            );
        }
        assert_eq!(
            Machine::from_fields(&HashMap::new()),
            Ok(Machine::default())
        );
        let bad: HashMap<String, String> = [("state", "ajar")]
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        assert!(Machine::from_fields(&bad).is_err());
        assert_eq!(
            Window::decode("c:0123"),
            Some(Window::decode("c:0123").expect("valid"))
        );
        assert_eq!(Window::decode("c:4"), None);
        assert_eq!(
            Window::decode("t:1.2.3.0"),
            None,
            "more failures than calls"
        );
    }
}
