//! A child `exwatch run --headless --json`, its JSON lines collected as they
//! arrive, killed when dropped.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

const BIN: &str = env!("CARGO_BIN_EXE_exwatch");

/// A running `exwatch run --headless --json -c CFG`.
pub struct Headless {
    pub child: Child,
    latest: Arc<Mutex<BTreeMap<String, serde_json::Value>>>,
    lines: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Headless {
    /// Starts it with `env` added to the environment; stderr is dropped.
    pub fn run(cfg: &Path, env: &[(&str, String)]) -> Headless {
        let mut child = Command::new(BIN)
            .args(["run", "--headless", "--json", "-c"])
            .arg(cfg)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn exwatch");
        let latest: Arc<Mutex<BTreeMap<String, serde_json::Value>>> = Arc::default();
        let lines: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
        let out = child.stdout.take().expect("stdout");
        let (sink, all) = (latest.clone(), lines.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    let ex = v["exchange"].as_str().unwrap_or_default().to_string();
                    sink.lock().unwrap().insert(ex, v.clone());
                    all.lock().unwrap().push(v);
                }
            }
        });
        Headless {
            child,
            latest,
            lines,
        }
    }

    /// The latest line of `exchange`, if any arrived.
    pub fn latest(&self, exchange: &str) -> Option<serde_json::Value> {
        self.latest.lock().unwrap().get(exchange).cloned()
    }

    /// The latest line of `exchange`'s endpoint `name`, if any arrived.
    pub fn endpoint(&self, exchange: &str, name: &str) -> Option<serde_json::Value> {
        let latest = self.latest.lock().unwrap();
        latest.get(exchange)?["endpoints"]
            .as_array()?
            .iter()
            .find(|e| e["name"] == name)
            .cloned()
    }

    /// Every line so far, in arrival order.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        self.lines.lock().unwrap().clone()
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Headless {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes `text` to `dir/config.toml` and returns its path.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, text).expect("write config");
    path
}
