//! Keys while a line is being typed in the footer: the filter, a silence's
//! duration, or the answer to a question (`y` sends, anything else cancels).

use super::keymap::Key;
use super::view::{Input, Reaction, ViewState};
use crate::model::Command;
use crossterm::event::KeyCode;
use std::time::Duration;

impl ViewState {
    pub(super) fn on_input_key(&mut self, key: Key) -> Reaction {
        if matches!(self.input, Some(Input::Confirm { .. }))
            && let Some(Input::Confirm { question, command }) = self.input.take()
        {
            return self.on_confirm_key(key, question, command);
        }
        let Some(input) = self.input.as_mut() else {
            return Reaction::None;
        };
        let text = match input {
            Input::Filter(t) => t,
            Input::Silence { text, .. } => text,
            Input::Confirm { .. } => return Reaction::None,
        };
        match key.code {
            KeyCode::Esc => {
                if matches!(input, Input::Filter(_)) {
                    self.filter.clear();
                }
                self.input = None;
                Reaction::Redraw
            }
            KeyCode::Backspace => {
                text.pop();
                if let Input::Filter(t) = input {
                    self.filter = t.clone();
                }
                Reaction::Redraw
            }
            KeyCode::Char(c) if !key.ctrl => {
                text.push(c);
                if let Input::Filter(t) = input {
                    // Filter as you type.
                    self.filter = t.clone();
                }
                Reaction::Redraw
            }
            KeyCode::Enter => {
                let Some(input) = self.input.take() else {
                    return Reaction::None;
                };
                match input {
                    Input::Filter(t) => {
                        self.filter = t;
                        Reaction::Redraw
                    }
                    Input::Confirm { .. } => Reaction::None,
                    Input::Silence { target, text } => match humantime::parse_duration(text.trim())
                    {
                        Ok(d) if d > Duration::ZERO => {
                            self.status(
                                format!(
                                    "silence sent: {} for {}",
                                    target.label(),
                                    humantime::format_duration(d)
                                ),
                                false,
                            );
                            Reaction::Send(Command::Silence {
                                exchange: Some(target.exchange),
                                endpoint: target.endpoint,
                                kind: target.kind,
                                duration: d,
                                by: self.operator.clone(),
                            })
                        }
                        _ => {
                            // Keep the prompt open so the operator can fix the duration.
                            self.status(
                                format!("{:?} is not a duration: try 30m, 2h or 1d", text.trim()),
                                true,
                            );
                            self.input = Some(Input::Silence { target, text });
                            Reaction::Redraw
                        }
                    },
                }
            }
            _ => Reaction::None,
        }
    }

    /// The answer to a yes/no question: `y` sends, anything else cancels.
    fn on_confirm_key(&mut self, key: Key, question: String, command: Command) -> Reaction {
        if key.code == KeyCode::Char('y') && !key.ctrl {
            let what = match &command {
                Command::ForceOpen { id } => format!("force open sent: {id}"),
                other => format!("sent: {other:?}"),
            };
            self.status(what, false);
            return Reaction::Send(command);
        }
        self.status(format!("cancelled ({question} only y confirms)"), false);
        Reaction::Redraw
    }
}
