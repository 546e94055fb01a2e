//! Colours and glyphs. Only the terminal's own 16 named colours are used, so
//! the dashboard follows the user's palette (light or dark); `NO_COLOR`
//! turns colour off entirely. Nothing is ever told by colour alone: every
//! state also has a symbol or a word.
//!
//! `EXWATCH_ASCII=1` (or a locale that is not UTF-8) switches every glyph to
//! plain ASCII for terminals and fonts where Braille/blocks render badly.

use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::border;
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders};

const ASCII_BORDER: border::Set = border::Set {
    top_left: "+",
    top_right: "+",
    bottom_left: "+",
    bottom_right: "+",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "-",
    horizontal_bottom: "-",
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
    pub ascii: bool,
}

impl Default for Theme {
    fn default() -> Self {
        Theme {
            color: true,
            ascii: false,
        }
    }
}

impl Theme {
    /// From the environment: `NO_COLOR` (any non-empty value), `EXWATCH_ASCII`, the locale.
    pub fn detect() -> Theme {
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        let ascii = match std::env::var("EXWATCH_ASCII") {
            Ok(v) if !v.is_empty() => v != "0",
            _ => !locale_is_utf8(),
        };
        Theme {
            color: !set("NO_COLOR"),
            ascii,
        }
    }

    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    pub fn ok(&self) -> Style {
        self.fg(Color::Green)
    }

    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow)
    }

    /// Bad news stays visible without colour: bold.
    pub fn bad(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn dim(&self) -> Style {
        if self.color {
            Style::new().add_modifier(Modifier::DIM)
        } else {
            Style::new()
        }
    }

    pub fn title(&self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    pub fn accent(&self) -> Style {
        self.fg(Color::Cyan)
    }

    /// The selected row: reversed video works with and without colour.
    pub fn selected(&self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    pub fn focused_border(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn border(&self) -> Style {
        self.dim()
    }

    /// A bordered panel, focused or not, with ASCII borders when asked.
    pub fn block<'a>(&self, title: String, focused: bool) -> Block<'a> {
        Block::default()
            .borders(Borders::ALL)
            .border_set(if self.ascii {
                ASCII_BORDER
            } else {
                border::PLAIN
            })
            .border_style(if focused {
                self.focused_border()
            } else {
                self.border()
            })
            .title(Span::styled(title, self.title()))
    }

    /// Marks the selected row in text too (captures, screen readers, no colour).
    pub fn marker(&self) -> &'static str {
        if self.ascii { ">" } else { "▶" }
    }

    /// Eight levels, lowest first.
    pub fn spark_levels(&self) -> &'static [char] {
        if self.ascii {
            &['_', '.', '-', '~', '=', '+', '*', '#']
        } else {
            &['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█']
        }
    }

    pub fn bar_full(&self) -> char {
        if self.ascii { '#' } else { '█' }
    }

    pub fn bar_empty(&self) -> char {
        if self.ascii { '.' } else { '░' }
    }

    pub fn sym_closed(&self) -> &'static str {
        if self.ascii { "o" } else { "●" }
    }

    pub fn sym_open(&self) -> &'static str {
        if self.ascii { "X" } else { "✖" }
    }

    pub fn sym_half_open(&self) -> &'static str {
        if self.ascii { "~" } else { "◐" }
    }

    pub fn sep(&self) -> &'static str {
        if self.ascii { "|" } else { "│" }
    }

    pub fn dot(&self) -> &'static str {
        if self.ascii { "-" } else { "·" }
    }
}

fn locale_is_utf8() -> bool {
    for name in ["LC_ALL", "LC_CTYPE", "LANG"] {
        if let Ok(v) = std::env::var(name)
            && !v.is_empty()
        {
            let v = v.to_ascii_lowercase();
            return v.contains("utf-8") || v.contains("utf8");
        }
    }
    // No locale at all: most modern terminals are UTF-8 anyway, and the
    // switch is there for the ones that are not.
    true
}
