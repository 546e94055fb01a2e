//! Render time of one dashboard frame: 20 exchanges x 3 endpoints with full
//! sample rings, at 200x50 (target: under 1 ms), plus 80x24 and a storm of
//! alerts. `cargo bench --bench render`.
//!
//! Criterion reports wall time, which a busy machine inflates. After it, the
//! bench prints the CPU time the drawing thread itself used per frame (from
//! `/proc/thread-self/schedstat`, nanoseconds on CPU), which does not count
//! time spent waiting for a core.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

#[path = "../tests/ui_fixtures/mod.rs"]
mod ui_fixtures;

use criterion::Criterion;
use exwatch::state::Snapshot;
use exwatch::ui::{self, Keymap, Mode, Theme, ViewState};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::hint::black_box;

fn frame(c: &mut Criterion, name: &str, snap: &Snapshot, view: &ViewState, w: u16, h: u16) {
    let mut term = match Terminal::new(TestBackend::new(w, h)) {
        Ok(t) => t,
        Err(e) => match e {},
    };
    c.bench_function(name, |b| {
        b.iter(|| {
            // A full draw: layout, every panel, and the diff against the previous frame.
            let _ = term.draw(|f| ui::render(f, black_box(snap), view, ui_fixtures::NOW));
        })
    });
}

fn render(c: &mut Criterion) {
    let view = ViewState::new("bench", Mode::Live, Keymap::default(), Theme::default());
    let big = ui_fixtures::many(20);
    assert_eq!(big.exchanges.len() * 3, 60);
    frame(c, "render/20x3 endpoints 200x50", &big, &view, 200, 50);
    let mut detail = view.clone();
    detail.detail = true;
    frame(
        c,
        "render/20x3 endpoints 200x50 + detail",
        &big,
        &detail,
        200,
        50,
    );
    frame(c, "render/20x3 endpoints 80x24", &big, &view, 80, 24);
    let storm = ui_fixtures::alert_storm();
    frame(c, "render/alert storm 200x50", &storm, &view, 200, 50);
}

/// Nanoseconds this thread has run on a CPU, if the kernel reports it.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn cpu_per_frame(name: &str, snap: &Snapshot, view: &ViewState, w: u16, h: u16) {
    let mut term = match Terminal::new(TestBackend::new(w, h)) {
        Ok(t) => t,
        Err(e) => match e {},
    };
    const FRAMES: u32 = 2_000;
    for _ in 0..100 {
        let _ = term.draw(|f| ui::render(f, snap, view, ui_fixtures::NOW));
    }
    let (Some(start), wall) = (thread_cpu_ns(), std::time::Instant::now()) else {
        println!("{name}: thread CPU time not available on this kernel");
        return;
    };
    for _ in 0..FRAMES {
        let _ = term.draw(|f| ui::render(f, black_box(snap), view, ui_fixtures::NOW));
    }
    let wall = wall.elapsed();
    if let Some(end) = thread_cpu_ns() {
        println!(
            "{name}: {:.0} µs CPU per frame, {:.0} µs wall ({FRAMES} frames)",
            (end - start) as f64 / FRAMES as f64 / 1_000.0,
            wall.as_secs_f64() * 1e6 / FRAMES as f64
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    render(&mut c);
    c.final_summary();
    let view = ViewState::new("bench", Mode::Live, Keymap::default(), Theme::default());
    let big = ui_fixtures::many(20);
    cpu_per_frame("cpu/20x3 endpoints 200x50", &big, &view, 200, 50);
    cpu_per_frame("cpu/20x3 endpoints 80x24", &big, &view, 80, 24);
    cpu_per_frame(
        "cpu/alert storm 200x50",
        &ui_fixtures::alert_storm(),
        &view,
        200,
        50,
    );
}
