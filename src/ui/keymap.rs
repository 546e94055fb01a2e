//! Keys as data: every [`Action`] the dashboard knows, the default table, and
//! the `[keys]` override from the config. The help overlay and the footer are
//! generated from the resolved [`Keymap`], so they always show what is bound.
//!
//! ```toml
//! [keys]
//! acknowledge = "A"             # one key
//! up = ["up", "k", "ctrl-p"]    # or several
//! ```
//!
//! An override replaces that action's default keys. A key bound to two actions
//! (after overrides) is a config error naming the line. Ctrl-C always quits.

use crate::problems::Problems;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use serde::Deserialize;
use std::fmt;
use strum::VariantArray;

/// Everything the operator can do from the keyboard, in the order the help
/// overlay and the footer list them
/// ([`VariantArray::VARIANTS`](strum::VariantArray)). Its snake_case name is
/// its key in `[keys]` ([`config_name`](Self::config_name)), one table with
/// the fields of [`KeymapConfig`].
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
pub enum Action {
    Up,
    Down,
    Top,
    Bottom,
    /// A page up: the focused table's selection, or the detail pane or
    /// help overlay when open.
    PageUp,
    /// A page down (see [`Action::PageUp`]).
    PageDown,
    NextPanel,
    Details,
    Back,
    Acknowledge,
    Triage,
    Silence,
    ForceOpen,
    ResetBreaker,
    /// Open or close the list of silences and acknowledgements.
    Silences,
    /// In the silences list: undo the selected silence or acknowledgement.
    Undo,
    Filter,
    ShowResolved,
    /// Cycle the focused panel's row order.
    Sort,
    Freeze,
    Help,
    Quit,
    /// Replay only: pause or resume the playback.
    ReplayPause,
    /// Replay only: apply one recorded event.
    ReplayStep,
    ReplayFaster,
    ReplaySlower,
    /// Replay only: jump to the next alert that starts firing.
    ReplayNextAlert,
}

impl Action {
    /// The name used in `[keys]`, e.g. `next_panel`.
    pub fn config_name(self) -> &'static str {
        self.into()
    }

    /// Its line in the help overlay: at most [`DESCRIPTION_MAX`] columns,
    /// so two columns of them fit 80 columns.
    pub fn description(self) -> &'static str {
        match self {
            Action::Up => "selection up",
            Action::Down => "selection down",
            Action::Top => "first row",
            Action::Bottom => "last row",
            Action::PageUp => "page up: rows/detail/help",
            Action::PageDown => "page down rows/detail/help",
            Action::NextPanel => "switch panel",
            Action::Details => "detail pane on/off",
            Action::Back => "close help/detail/filter",
            Action::Acknowledge => "acknowledge the incident",
            Action::Triage => "ask for triage",
            Action::Silence => "silence (asks how long)",
            Action::Silences => "list silences and acks",
            Action::Undo => "in that list: undo the row",
            Action::ForceOpen => "force breaker open (y/n)",
            Action::ResetBreaker => "reset (close) the breaker",
            Action::Filter => "filter rows by text",
            Action::ShowResolved => "show/hide resolved alerts",
            Action::Sort => "cycle the panel's order",
            Action::Freeze => "freeze (polling goes on)",
            Action::Help => "this help",
            Action::Quit => "quit",
            Action::ReplayPause => "replay: pause/resume",
            Action::ReplayStep => "replay: one event, paused",
            Action::ReplayFaster => "replay: twice as fast",
            Action::ReplaySlower => "replay: half as fast",
            Action::ReplayNextAlert => "replay: to the next alert",
        }
    }

    /// Whether the action changes engine state (acknowledge, triage,
    /// silence, breaker): refused in a replay, which is read-only.
    pub fn live_only(self) -> bool {
        matches!(
            self,
            Action::Acknowledge
                | Action::Triage
                | Action::Silence
                | Action::ForceOpen
                | Action::ResetBreaker
        )
    }

    /// Whether the action steers a replay (no use on a live dashboard).
    pub fn replay_only(self) -> bool {
        matches!(
            self,
            Action::ReplayPause
                | Action::ReplayStep
                | Action::ReplayFaster
                | Action::ReplaySlower
                | Action::ReplayNextAlert
        )
    }

    /// Short label for the footer, for the actions worth a reminder there.
    pub fn footer_label(self) -> Option<&'static str> {
        Some(match self {
            Action::NextPanel => "panel",
            Action::Details => "details",
            Action::Acknowledge => "ack",
            Action::Triage => "triage",
            Action::Silence => "silence",
            Action::Silences => "silences",
            Action::ForceOpen => "open",
            Action::ResetBreaker => "reset",
            Action::Filter => "filter",
            Action::ShowResolved => "resolved",
            Action::Sort => "sort",
            Action::Freeze => "freeze",
            Action::ReplayPause => "pause",
            Action::ReplayStep => "step",
            Action::ReplayFaster => "faster",
            Action::ReplaySlower => "slower",
            Action::ReplayNextAlert => "next alert",
            Action::Help => "help",
            Action::Quit => "quit",
            _ => return None,
        })
    }

    fn default_keys(self) -> &'static [&'static str] {
        match self {
            Action::Up => &["up", "k"],
            Action::Down => &["down", "j"],
            Action::Top => &["home", "g"],
            Action::Bottom => &["end", "G"],
            Action::PageUp => &["pageup"],
            Action::PageDown => &["pagedown"],
            Action::NextPanel => &["tab", "backtab"],
            Action::Details => &["enter"],
            Action::Back => &["esc"],
            Action::Acknowledge => &["a"],
            Action::Triage => &["t"],
            Action::Silence => &["s"],
            Action::Silences => &["S"],
            Action::Undo => &["u"],
            Action::ForceOpen => &["o"],
            Action::ResetBreaker => &["c"],
            Action::Filter => &["/"],
            Action::ShowResolved => &["r"],
            Action::Sort => &["O"],
            Action::Freeze => &["f"],
            Action::Help => &["?"],
            Action::Quit => &["q", "ctrl-c"],
            Action::ReplayPause => &["space"],
            Action::ReplayStep => &["."],
            Action::ReplayFaster => &["+"],
            Action::ReplaySlower => &["-"],
            Action::ReplayNextAlert => &[">"],
        }
    }
}

/// Widest [`Action::description`], in columns.
pub const DESCRIPTION_MAX: usize = 26;

/// One key as written in the config: a character (`a`, `A`, `/`), a named key
/// (`up`, `enter`, `tab`, `f1`...), or `ctrl-<char>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

const NAMED: [(&str, KeyCode); 14] = [
    ("up", KeyCode::Up),
    ("down", KeyCode::Down),
    ("left", KeyCode::Left),
    ("right", KeyCode::Right),
    ("home", KeyCode::Home),
    ("end", KeyCode::End),
    ("pageup", KeyCode::PageUp),
    ("pagedown", KeyCode::PageDown),
    ("tab", KeyCode::Tab),
    ("backtab", KeyCode::BackTab),
    ("enter", KeyCode::Enter),
    ("esc", KeyCode::Esc),
    ("space", KeyCode::Char(' ')),
    ("backspace", KeyCode::Backspace),
];

/// Ctrl-C is always a way out, whatever the config says.
pub const CTRL_C: Key = Key {
    code: KeyCode::Char('c'),
    ctrl: true,
};

impl Key {
    pub fn parse(s: &str) -> Result<Key, String> {
        let lower = s.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix("ctrl-") {
            let mut chars = rest.chars();
            return match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_alphanumeric() => Ok(Key {
                    code: KeyCode::Char(c),
                    ctrl: true,
                }),
                _ => Err(format!(
                    "{s:?} is not a key: ctrl- must be followed by one letter or digit, e.g. \"ctrl-p\""
                )),
            };
        }
        if let Some((_, code)) = NAMED.iter().find(|(n, _)| *n == lower) {
            return Ok(Key {
                code: *code,
                ctrl: false,
            });
        }
        if let Some(n) = lower.strip_prefix('f').and_then(|d| d.parse::<u8>().ok())
            && (1..=12).contains(&n)
        {
            return Ok(Key {
                code: KeyCode::F(n),
                ctrl: false,
            });
        }
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if !c.is_control() && c != ' ' => Ok(Key {
                code: KeyCode::Char(c),
                ctrl: false,
            }),
            _ => Err(format!(
                "{s:?} is not a key: use one character (\"a\", \"A\", \"/\"), ctrl-<letter>, f1..f12, or one of {}",
                NAMED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// The key as shown: its [`Display`](fmt::Display) form, with arrow
    /// keys spelt out when `ascii`.
    pub fn label(&self, ascii: bool) -> String {
        let word = match self.code {
            KeyCode::Up => "Up",
            KeyCode::Down => "Down",
            KeyCode::Left => "Left",
            KeyCode::Right => "Right",
            _ => return self.to_string(),
        };
        if !ascii {
            return self.to_string();
        }
        if self.ctrl {
            format!("^{word}")
        } else {
            word.to_string()
        }
    }

    /// The key of a terminal event, if it is a press we act on.
    pub fn from_event(ev: &KeyEvent) -> Option<Key> {
        if ev.kind == KeyEventKind::Release {
            return None;
        }
        Some(Key {
            code: ev.code,
            // Shift is already in the character (`A` vs `a`).
            ctrl: ev.modifiers.contains(KeyModifiers::CONTROL),
        })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("^")?;
        }
        match self.code {
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::BackTab => f.write_str("S-Tab"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Backspace => f.write_str("Bksp"),
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) if self.ctrl => write!(f, "{}", c.to_ascii_uppercase()),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::F(n) => write!(f, "F{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// One key or several, as written in `[keys]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum KeySpec {
    One(String),
    Many(Vec<String>),
}

impl KeySpec {
    fn items(&self) -> Vec<&str> {
        match self {
            KeySpec::One(s) => vec![s.as_str()],
            KeySpec::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// The `[keys]` table: per action, the keys that replace its defaults.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KeymapConfig {
    pub up: Option<KeySpec>,
    pub down: Option<KeySpec>,
    pub top: Option<KeySpec>,
    pub bottom: Option<KeySpec>,
    pub page_up: Option<KeySpec>,
    pub page_down: Option<KeySpec>,
    pub next_panel: Option<KeySpec>,
    pub details: Option<KeySpec>,
    pub back: Option<KeySpec>,
    pub acknowledge: Option<KeySpec>,
    pub triage: Option<KeySpec>,
    pub silence: Option<KeySpec>,
    pub silences: Option<KeySpec>,
    pub undo: Option<KeySpec>,
    pub force_open: Option<KeySpec>,
    pub reset_breaker: Option<KeySpec>,
    pub filter: Option<KeySpec>,
    pub show_resolved: Option<KeySpec>,
    pub sort: Option<KeySpec>,
    pub freeze: Option<KeySpec>,
    pub help: Option<KeySpec>,
    pub quit: Option<KeySpec>,
    pub replay_pause: Option<KeySpec>,
    pub replay_step: Option<KeySpec>,
    pub replay_faster: Option<KeySpec>,
    pub replay_slower: Option<KeySpec>,
    pub replay_next_alert: Option<KeySpec>,
}

impl KeymapConfig {
    fn get(&self, a: Action) -> Option<&KeySpec> {
        match a {
            Action::Up => self.up.as_ref(),
            Action::Down => self.down.as_ref(),
            Action::Top => self.top.as_ref(),
            Action::Bottom => self.bottom.as_ref(),
            Action::PageUp => self.page_up.as_ref(),
            Action::PageDown => self.page_down.as_ref(),
            Action::NextPanel => self.next_panel.as_ref(),
            Action::Details => self.details.as_ref(),
            Action::Back => self.back.as_ref(),
            Action::Acknowledge => self.acknowledge.as_ref(),
            Action::Triage => self.triage.as_ref(),
            Action::Silence => self.silence.as_ref(),
            Action::Silences => self.silences.as_ref(),
            Action::Undo => self.undo.as_ref(),
            Action::ForceOpen => self.force_open.as_ref(),
            Action::ResetBreaker => self.reset_breaker.as_ref(),
            Action::Filter => self.filter.as_ref(),
            Action::ShowResolved => self.show_resolved.as_ref(),
            Action::Sort => self.sort.as_ref(),
            Action::Freeze => self.freeze.as_ref(),
            Action::Help => self.help.as_ref(),
            Action::Quit => self.quit.as_ref(),
            Action::ReplayPause => self.replay_pause.as_ref(),
            Action::ReplayStep => self.replay_step.as_ref(),
            Action::ReplayFaster => self.replay_faster.as_ref(),
            Action::ReplaySlower => self.replay_slower.as_ref(),
            Action::ReplayNextAlert => self.replay_next_alert.as_ref(),
        }
    }

    /// Check every override; problems are reported against `keys.<action>`,
    /// which the config locator turns into the line of that binding.
    pub fn validate(&self, p: &mut Problems) {
        if let Err(problems) = Keymap::resolve(self) {
            for (path, msg) in problems {
                p.push(path, msg);
            }
        }
    }
}

/// The resolved table: for each action, its keys in display order.
#[derive(Debug, Clone, PartialEq)]
pub struct Keymap {
    bindings: Vec<(Action, Vec<Key>)>,
}

/// Raised when a keymap that passed config validation fails to resolve,
/// which only happens if it was built without going through the config.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid [keys]: {}", .0.iter().map(|(p, m)| format!("{p}: {m}")).collect::<Vec<_>>().join("; "))]
pub struct KeymapError(pub Vec<(String, String)>);

impl Default for Keymap {
    fn default() -> Self {
        // The defaults are constants checked by the tests: no duplicates, all parse.
        Keymap::resolve(&KeymapConfig::default()).unwrap_or(Keymap {
            bindings: Vec::new(),
        })
    }
}

impl Keymap {
    pub fn from_config(cfg: &KeymapConfig) -> Result<Keymap, KeymapError> {
        Keymap::resolve(cfg).map_err(KeymapError)
    }

    fn resolve(cfg: &KeymapConfig) -> Result<Keymap, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let mut bindings = Vec::new();
        // key → (action, came from the config)
        let mut owner: Vec<(Key, Action, bool)> = Vec::new();
        for &a in Action::VARIANTS {
            let path = format!("keys.{}", a.config_name());
            let (names, overridden): (Vec<&str>, bool) = match cfg.get(a) {
                Some(spec) => (spec.items(), true),
                None => (a.default_keys().to_vec(), false),
            };
            if overridden && names.is_empty() {
                problems.push((
                    path.clone(),
                    "needs at least one key; remove the line to keep the default".into(),
                ));
            }
            let mut keys = Vec::new();
            for name in names {
                let key = match Key::parse(name) {
                    Ok(k) => k,
                    Err(e) => {
                        problems.push((path.clone(), e));
                        continue;
                    }
                };
                if key == CTRL_C && a != Action::Quit {
                    problems.push((path.clone(), "ctrl-c is reserved for quit".into()));
                    continue;
                }
                if let Some((_, other, other_cfg)) = owner.iter().find(|(k, _, _)| *k == key) {
                    if *other == a {
                        problems.push((path.clone(), format!("key {name:?} is listed twice")));
                    } else {
                        let whence = if *other_cfg {
                            "in [keys]"
                        } else {
                            "by default"
                        };
                        // Report where the user can fix it: on their own line.
                        let at = if overridden || !*other_cfg {
                            path.clone()
                        } else {
                            format!("keys.{}", other.config_name())
                        };
                        problems.push((
                            at,
                            format!(
                                "duplicate binding: key {name:?} is bound to both {} and {} ({whence}); \
                                 rebind one of them",
                                a.config_name(),
                                other.config_name()
                            ),
                        ));
                    }
                    continue;
                }
                owner.push((key, a, overridden));
                keys.push(key);
            }
            if a == Action::Quit && !keys.contains(&CTRL_C) {
                keys.push(CTRL_C);
                owner.push((CTRL_C, a, false));
            }
            bindings.push((a, keys));
        }
        if problems.is_empty() {
            Ok(Keymap { bindings })
        } else {
            Err(problems)
        }
    }

    pub fn action_for(&self, key: Key) -> Option<Action> {
        self.bindings
            .iter()
            .find(|(_, keys)| keys.contains(&key))
            .map(|(a, _)| *a)
    }

    pub fn keys_for(&self, a: Action) -> &[Key] {
        self.bindings
            .iter()
            .find(|(x, _)| *x == a)
            .map(|(_, k)| k.as_slice())
            .unwrap_or(&[])
    }

    /// `a`, `↑/k`: the keys of an action as the help and footer show them.
    pub fn label(&self, a: Action) -> String {
        self.label_in(a, false)
    }

    /// [`Keymap::label`], with arrow keys spelt `Up`, `Down`, `Left`,
    /// `Right` when `ascii` (a terminal without Unicode).
    pub fn label_in(&self, a: Action, ascii: bool) -> String {
        self.keys_for(a)
            .iter()
            .map(|k| k.label(ascii))
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Every action with its keys, in table order.
    pub fn bindings(&self) -> impl Iterator<Item = (Action, &[Key])> {
        self.bindings.iter().map(|(a, k)| (*a, k.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each action's name is its field of `[keys]`.
    #[test]
    fn config_names_are_the_keys_fields() {
        let names: Vec<&str> = Action::VARIANTS.iter().map(|a| a.config_name()).collect();
        assert_eq!(
            names,
            [
                "up",
                "down",
                "top",
                "bottom",
                "page_up",
                "page_down",
                "next_panel",
                "details",
                "back",
                "acknowledge",
                "triage",
                "silence",
                "force_open",
                "reset_breaker",
                "silences",
                "undo",
                "filter",
                "show_resolved",
                "sort",
                "freeze",
                "help",
                "quit",
                "replay_pause",
                "replay_step",
                "replay_faster",
                "replay_slower",
                "replay_next_alert",
            ]
        );
        for &a in Action::VARIANTS {
            let cfg: KeymapConfig =
                toml::from_str(&format!("{} = \"x\"", a.config_name())).expect("a [keys] field");
            assert_eq!(cfg.get(a), Some(&KeySpec::One("x".into())), "{a:?}");
        }
    }

    #[test]
    fn descriptions_fit_two_help_columns() {
        for &a in Action::VARIANTS {
            assert!(
                a.description().chars().count() <= DESCRIPTION_MAX,
                "{a:?}: {:?} is wider than {DESCRIPTION_MAX}",
                a.description()
            );
        }
    }

    #[test]
    fn key_names_parse() {
        assert_eq!(Key::parse("A").map(|k| k.code), Ok(KeyCode::Char('A')));
        assert_eq!(Key::parse("Enter").map(|k| k.code), Ok(KeyCode::Enter));
        assert_eq!(
            Key::parse("ctrl-p"),
            Ok(Key {
                code: KeyCode::Char('p'),
                ctrl: true
            })
        );
        assert_eq!(Key::parse("f5").map(|k| k.code), Ok(KeyCode::F(5)));
        assert!(Key::parse("ctrl+").is_err());
        assert!(Key::parse("hyper").is_err());
    }

    #[test]
    fn quit_keeps_ctrl_c_when_overridden() {
        let cfg = KeymapConfig {
            quit: Some(KeySpec::One("x".into())),
            ..Default::default()
        };
        let km = Keymap::from_config(&cfg).expect("valid");
        assert_eq!(km.action_for(CTRL_C), Some(Action::Quit));
        assert_eq!(
            km.action_for(Key::parse("x").expect("key")),
            Some(Action::Quit)
        );
        assert_eq!(km.action_for(Key::parse("q").expect("key")), None);
    }
}
