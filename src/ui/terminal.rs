//! Taking over the terminal and giving it back. Every way out (quit, Ctrl-C,
//! SIGTERM, an error, a panic) ends in [`restore`], which is idempotent so
//! the panic hook and the normal path cannot undo each other's work.
//!
//! The session must be entered on the thread that runs the UI loop: a panic
//! there restores the terminal and then runs the previous hook; a panic on
//! another thread (a worker task, which tokio contains) goes to the log file
//! instead of over the screen.

use crossterm::{cursor, event, execute, terminal};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use std::io::{self, Stdout};
use std::panic::PanicHookInfo;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the terminal is currently in the dashboard's raw/alternate mode.
static ACTIVE: AtomicBool = AtomicBool::new(false);

type Hook = Arc<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// The dashboard's hold on the terminal. Dropping it restores the terminal.
pub struct Session {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
    previous_hook: Option<Hook>,
}

impl Session {
    /// Raw mode, alternate screen, mouse reports, hidden cursor, and a panic hook that
    /// restores all that before the previous hook prints the panic.
    pub fn enter() -> io::Result<Session> {
        let previous: Hook = Arc::from(std::panic::take_hook());
        let chained = previous.clone();
        let ui_thread = std::thread::current().id();
        std::panic::set_hook(Box::new(move |info| {
            if ACTIVE.load(Ordering::SeqCst) && std::thread::current().id() != ui_thread {
                // A worker task panicked; tokio contains it and the dashboard
                // goes on. Printing would scribble over the screen: log it.
                tracing::error!(panic = %info, "a task panicked while the dashboard was running");
                return;
            }
            restore();
            chained(info);
        }));
        let mut session = Session {
            terminal: Terminal::new(CrosstermBackend::new(io::stdout()))?,
            previous_hook: Some(previous),
        };
        // Restore happens in Drop if any step below fails.
        ACTIVE.store(true, Ordering::SeqCst);
        terminal::enable_raw_mode()?;
        execute!(
            session.terminal.backend_mut(),
            terminal::EnterAlternateScreen,
            event::EnableMouseCapture,
            cursor::Hide
        )?;
        session.terminal.clear()?;
        Ok(session)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        restore();
        if let Some(prev) = self.previous_hook.take() {
            // Put back the hook we chained to, so a later panic prints as before.
            let _ = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| prev(info)));
        }
    }
}

/// Leave raw mode and the alternate screen and show the cursor. Safe to call
/// more than once and from the panic hook.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = terminal::disable_raw_mode();
        let _ = execute!(
            io::stdout(),
            event::DisableMouseCapture,
            terminal::LeaveAlternateScreen,
            cursor::Show
        );
    }
}
