//! The tests that wait minutes of real time, in one binary. `cargo test`
//! runs test binaries one after another but the tests of one binary in
//! parallel threads, so here their waits overlap: the demo's two-minute
//! fault cycle, the webhook down for two minutes, and the triage race run
//! side by side instead of end to end.
//!
//! Two of them run the monitor in-process, whose sinks read their URLs from
//! the environment. Setting a variable while another thread may read the
//! environment is unsound, so every variable is set once, by [`setup`], which
//! every test here calls first, before it does anything else: the first test
//! sets them all while the others wait on the same lock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

#[path = "../alert_common/mod.rs"]
mod alert_common;
#[path = "../common/mod.rs"]
mod common;

mod alert_sim_e2e;
mod incidents_demo;
mod triage_single_writer;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::{LazyLock, Mutex};

/// The webhook variables of the in-process tests, one per test (distinct
/// names, so no test sees another's receiver).
const HOOK_VARS: [&str; 2] = ["EXW_INCIDENTS_HOOK", "EXW_SW_HOOK"];

/// Each variable's listener on 127.0.0.1, bound before its URL was set and
/// handed to its test's receiver.
static HOOKS: LazyLock<Mutex<BTreeMap<&'static str, TcpListener>>> = LazyLock::new(|| {
    let mut hooks = BTreeMap::new();
    for var in HOOK_VARS {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a hook listener");
        listener.set_nonblocking(true).expect("non-blocking");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        // SAFETY: only ever run inside `setup`, the first thing every test of
        // this binary does: the other tests wait on this LazyLock or have not
        // started, so no other thread reads the environment meanwhile.
        unsafe { std::env::set_var(var, url) };
        hooks.insert(var, listener);
    }
    Mutex::new(hooks)
});

/// Sets every variable of [`HOOK_VARS`] (once, for the whole binary). The
/// first statement of every test in this binary.
pub fn setup() {
    LazyLock::force(&HOOKS);
}

/// The listener `var`'s URL points at (once per variable).
pub fn hook_listener(var: &str) -> TcpListener {
    setup();
    HOOKS
        .lock()
        .unwrap()
        .remove(var)
        .unwrap_or_else(|| panic!("{var} is not in HOOK_VARS, or taken twice"))
}
