//! The sliding window of recent call outcomes a closed breaker judges its
//! failure and slow-call rates over.
//!
//! Count-based (`window_kind = "count"`): one slot per call, the last
//! `window_size` calls. Time-based (`"time"`): one slot per second, the calls
//! of the last `window` (rounded up to whole seconds). Running totals make
//! [`Window::figures`] O(1) after eviction. Its Redis text form is in
//! [`super::codec`].

use super::{BreakerSettings, WindowKind};
use std::collections::VecDeque;

/// Sliding window of recent outcomes, with running totals.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Window {
    pub kind: WindowKind,
    pub(super) slots: VecDeque<Slot>,
    calls: u32,
    failures: u32,
    slow: u32,
}

/// One call (count window) or one second of calls (time window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Slot {
    /// Unix seconds of the slot (time window); 0 in a count window.
    pub(super) sec: i64,
    pub(super) calls: u32,
    pub(super) failures: u32,
    pub(super) slow: u32,
}

/// Totals of the window at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    pub calls: u32,
    pub failures: u32,
    pub slow: u32,
}

impl Window {
    /// A window of `kind` holding `slots`, with the totals summed; `None`
    /// if the calls overflow a `u32`.
    pub(super) fn from_slots(kind: WindowKind, slots: VecDeque<Slot>) -> Option<Window> {
        let mut w = Window {
            kind,
            slots,
            ..Window::default()
        };
        for sl in &w.slots {
            w.calls = w.calls.checked_add(sl.calls)?;
            w.failures += sl.failures;
            w.slow += sl.slow;
        }
        Some(w)
    }

    /// The time window's length in whole seconds (at least 1).
    fn window_secs(s: &BreakerSettings) -> i64 {
        (s.window.as_millis().div_ceil(1000) as i64).max(1)
    }

    /// Empty it, as a window of `kind`.
    pub(super) fn clear(&mut self, kind: WindowKind) {
        *self = Window {
            kind,
            ..Window::default()
        };
    }

    fn pop_front(&mut self) {
        if let Some(old) = self.slots.pop_front() {
            self.calls -= old.calls;
            self.failures -= old.failures;
            self.slow -= old.slow;
        }
    }

    /// Drop what fell out of the window at `now_ms` (and everything if the
    /// settings changed kind since the window was filled).
    fn evict(&mut self, s: &BreakerSettings, now_ms: i64) {
        if self.kind != s.window_kind {
            self.clear(s.window_kind);
        }
        match self.kind {
            WindowKind::Count => {
                while self.slots.len() > s.window_size.max(1) as usize {
                    self.pop_front();
                }
            }
            WindowKind::Time => {
                let oldest = now_ms.div_euclid(1000) - Self::window_secs(s) + 1;
                while self.slots.front().is_some_and(|f| f.sec < oldest) {
                    self.pop_front();
                }
            }
        }
    }

    /// Count one call made at `now_ms` (unix ms): whether it `failed`, and
    /// whether it was `slow`.
    pub fn push(&mut self, s: &BreakerSettings, now_ms: i64, failed: bool, slow: bool) {
        self.evict(s, now_ms);
        let (f, sl) = (u32::from(failed), u32::from(slow));
        let sec = now_ms.div_euclid(1000);
        match self.slots.back_mut() {
            Some(b) if self.kind == WindowKind::Time && b.sec == sec => {
                b.calls += 1;
                b.failures += f;
                b.slow += sl;
            }
            _ => self.slots.push_back(Slot {
                sec: if self.kind == WindowKind::Time {
                    sec
                } else {
                    0
                },
                calls: 1,
                failures: f,
                slow: sl,
            }),
        }
        self.calls += 1;
        self.failures += f;
        self.slow += sl;
        self.evict(s, now_ms);
    }

    /// The totals at `now_ms` (unix ms), after dropping what fell out.
    pub fn figures(&mut self, s: &BreakerSettings, now_ms: i64) -> Figures {
        self.evict(s, now_ms);
        self.figures_unevicted()
    }

    /// Totals as last computed (for views that must not mutate).
    pub fn figures_unevicted(&self) -> Figures {
        Figures {
            calls: self.calls,
            failures: self.failures,
            slow: self.slow,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const T0: i64 = 1_700_000_000_000;

    #[test]
    fn a_count_window_keeps_the_last_calls() {
        let s = BreakerSettings {
            window_size: 3,
            ..BreakerSettings::default()
        };
        let mut w = Window::default();
        for (failed, slow) in [(true, true), (true, false), (false, true), (false, false)] {
            w.push(&s, T0, failed, slow);
        }
        let f = w.figures(&s, T0);
        assert_eq!((f.calls, f.failures, f.slow), (3, 1, 1));
    }

    #[test]
    fn a_time_window_drops_whole_seconds_and_a_kind_change_clears_it() {
        let s = BreakerSettings {
            window_kind: WindowKind::Time,
            window: Duration::from_millis(2_500),
            ..BreakerSettings::default()
        };
        let mut w = Window::default();
        w.push(&s, T0, true, false);
        w.push(&s, T0 + 999, true, false);
        w.push(&s, T0 + 1_000, false, false);
        assert_eq!(w.slots.len(), 2, "one slot per second");
        assert_eq!(w.figures(&s, T0 + 2_999).calls, 3, "3 s window");
        let f = w.figures(&s, T0 + 3_000);
        assert_eq!((f.calls, f.failures), (1, 0), "the first second fell out");
        let count = BreakerSettings {
            window_kind: WindowKind::Count,
            ..s
        };
        assert_eq!(w.figures(&count, T0 + 3_000).calls, 0);
        assert_eq!(w.kind, WindowKind::Count);
    }
}
