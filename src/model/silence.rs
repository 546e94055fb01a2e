//! The operator's live silences and acknowledgements, as the engine reports
//! them ([`super::Event::Suppressions`]) and the snapshot shows them.
//!
//! The engine owns them; this is the shared vocabulary, no logic.

use serde::{Deserialize, Serialize};

/// One silence the engine holds: it silences every open alert matching all
/// the fields given (`None` = any; `kind` may end in `*`) until `until_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceInfo {
    /// Engine-assigned, from 1, unique for the engine's lifetime.
    pub id: u64,
    #[serde(default)]
    pub exchange: Option<String>,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    /// The operator who set it.
    pub by: String,
    /// When it was set, unix ms.
    pub created_ms: i64,
    /// When it expires, unix ms.
    pub until_ms: i64,
}

impl SilenceInfo {
    /// `exchange/endpoint/kind`, `*` for a field not given: `okx/book/*`.
    pub fn matcher_label(&self) -> String {
        format!(
            "{}/{}/{}",
            self.exchange.as_deref().unwrap_or("*"),
            self.endpoint.as_deref().unwrap_or("*"),
            self.kind.as_deref().unwrap_or("*")
        )
    }

    /// The `state_by` of the alerts it silences: `silence #3 by ana`.
    pub fn state_by(&self) -> String {
        format!("silence #{} by {}", self.id, self.by)
    }
}

/// One acknowledged open incident (every open symptom of it is acknowledged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckInfo {
    /// The incident id, `<root fingerprint>#<episode>` (an alert from a
    /// journal older than incidents is its own incident).
    pub incident: String,
    /// The operator who acknowledged it.
    pub by: String,
    /// When, unix ms.
    pub at_ms: i64,
}
