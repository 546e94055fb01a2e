//! The real binary in a real terminal: `exwatch <args>` in a detached tmux
//! session on a private socket, 120x40, the screen read the way a user
//! would, keys pressed, and the terminal checked to be handed back on every
//! way out. Shared by tests/ui_tmux.rs, tests/replay_tmux.rs and
//! tests/fault_injection.rs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_exwatch");
/// What the pane's shell prints after exwatch ends (`EXWATCH-EXITED <status>`,
/// then `EXWATCH-EXITED-2`).
pub const EXITED: &str = "EXWATCH-EXITED";

/// A tmux server of our own; killed on drop so no test leaves one behind.
pub struct Tmux {
    socket: String,
    dir: tempfile::TempDir,
}

impl Tmux {
    pub fn start(name: &str) -> Tmux {
        Tmux::start_with(name, "demo", &[])
    }

    /// `exwatch <args>` in the pane, with extra environment variables.
    pub fn start_with(name: &str, args: &str, env: &[(&str, String)]) -> Tmux {
        let found = Command::new("tmux").arg("-V").output();
        assert!(
            found.as_ref().is_ok_and(|o| o.status.success()),
            "tmux is needed for this test (apt-get install tmux; .ci/run installs it): {found:?}"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let socket = format!("exw-{name}-{}-{nanos}", std::process::id());
        let t = Tmux { socket, dir };
        // The inner shell writes its pid and then *becomes* exwatch, so the
        // pid file names the process a signal must reach. The outer shell
        // prints the exit status on the restored screen and keeps the pane.
        let script = format!(
            "sh -c 'echo $$ > {pid}; exec {bin} {args}'; echo {EXITED} $?; echo {EXITED}-2; sleep 120",
            pid = t.pid_file().display(),
            bin = BIN,
        );
        let status = Command::new("tmux")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .args(["-L", &t.socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", "120", "-y", "40", "-s", "e2e"])
            .env("XDG_STATE_HOME", t.dir.path())
            .env("TERM", "xterm-256color")
            .env("LANG", "C.UTF-8")
            .env_remove("NO_COLOR")
            .env_remove("EXWATCH_ASCII")
            .env_remove("TMUX")
            .arg(script)
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux new-session failed");
        t
    }

    pub fn pid_file(&self) -> PathBuf {
        self.dir.path().join("exwatch.pid")
    }

    pub fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "e2e"])
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "e2e"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    pub fn pane_flag(&self, flag: &str) -> String {
        self.tmux(&[
            "display-message",
            "-p",
            "-t",
            "e2e",
            &format!("#{{{flag}}}"),
        ])
        .trim()
        .to_string()
    }

    /// Poll the screen until `pred` holds or `within` passes; the last screen either way.
    pub fn wait_for(
        &self,
        within: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let deadline = Instant::now() + within;
        loop {
            let s = self.screen();
            if pred(&s) {
                return Ok(s);
            }
            if Instant::now() > deadline {
                return Err(s);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Move down the focused panel (at most `steps` rows) until the selected
    /// row satisfies `want`; the last screen either way.
    pub fn select(&self, steps: usize, want: impl Fn(&str) -> bool) -> String {
        let mut screen = self.screen();
        for _ in 0..steps {
            if selected(&screen).is_some_and(|l| want(&l)) {
                break;
            }
            self.keys(&["j"]);
            std::thread::sleep(Duration::from_millis(200));
            screen = self.screen();
        }
        screen
    }

    pub fn pid(&self) -> u32 {
        read_pid(&self.pid_file())
    }

    /// After a way out: the process ended with 0, the alternate screen is
    /// left, the cursor is back and the dashboard is gone from the screen.
    /// `how` (`q`, `ctrl-c`, `sigterm`...) labels the failure messages.
    pub fn assert_exited_and_restored(&self, pid: u32, how: &str) {
        let s = self
            // Both lines the shell prints after exit, so the check below does not race the second.
            .wait_for(Duration::from_secs(15), |s| {
                s.contains(&format!("{EXITED}-2"))
            })
            .unwrap_or_else(|s| panic!("{how}: exwatch did not exit:\n{s}"));
        assert!(
            s.contains(&format!("{EXITED} 0")),
            "{how}: non-zero exit:\n{s}"
        );
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "{how}: process {pid} still exists"
        );
        assert_eq!(
            self.pane_flag("alternate_on"),
            "0",
            "{how}: still on the alternate screen"
        );
        assert_eq!(
            self.pane_flag("cursor_flag"),
            "1",
            "{how}: cursor left hidden"
        );
        assert_eq!(
            self.pane_flag("mouse_any_flag"),
            "0",
            "{how}: mouse reports left on"
        );
        assert!(
            !s.contains("problems first"),
            "{how}: dashboard still on the main screen:\n{s}"
        );
        // Raw mode off: the terminal translates newlines again, so the shell's
        // second line starts at column 0 (in raw mode it would be indented).
        assert!(
            s.lines().any(|l| l.starts_with(&format!("{EXITED}-2"))),
            "{how}: output after exit is not at column 0 (raw mode left on?):\n{s}"
        );
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        if let Ok(text) = std::fs::read_to_string(self.pid_file())
            && let Ok(pid) = text.trim().parse::<u32>()
            && Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

pub fn read_pid(path: &Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(t) = std::fs::read_to_string(path)
            && let Ok(pid) = t.trim().parse()
        {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "no pid file at {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The selected row: the one marked ▶ in the focused panel (the selection
/// stays on its alert when rows move).
pub fn selected(s: &str) -> Option<String> {
    s.lines().find(|l| l.contains('▶')).map(str::to_string)
}

pub fn dashboard_visible(s: &str) -> bool {
    // All 30 rows watched (15 REST endpoints, 5 stream connections and their
    // 10 subscriptions): `rows 1–11 of 30` (they never all fit).
    s.contains("LIVE")
        && (s.contains("Exchanges 30 ") || s.contains(" of 30 "))
        && s.contains("Alerts")
}
