//! The one scrubber of secrets: text that came from a remote end (a sink's
//! answer, a model provider's error, a transport error) goes through
//! [`scrub`] before it is logged, journaled, shown or sent to the model.
//!
//! Every secret exwatch holds is registered here when it is read from its
//! environment variable ([`register`]): sink URLs and PagerDuty routing keys
//! (`alert::sinks::Secret::new`), the triage API key
//! (`alert::triage::ApiKey::new`), the Redis URL (`redis_link`). Nothing
//! else needs to remember to: the exits call [`scrub`], which knows every
//! secret registered so far in this process.
//!
//! What is looked for, per secret (each such string is a *part*):
//! - a plain secret (an API key, a routing key): the value;
//! - a URL (anything `url` parses with a host): the whole URL (found only
//!   whole: its prefix is a scheme, its suffix may be a host), and, found
//!   whole or by fragments: its password, its path, its query and its
//!   fragment, plus the user name, each path segment and each query value
//!   that looks like a token (has a digit, or 16 characters or more: path
//!   words such as `services` or `enqueue` are not secret); each as written
//!   and percent-decoded. Scheme, host and port are not secret.
//!
//! A part of [`FRAGMENT`] (6) characters or more is found whole and by any
//! prefix or suffix of at least [`FRAGMENT`] characters (a provider quoting
//! `sk-abc123…`, a receiver quoting a token cut short, `…q9zz81` at the end of
//! a masked key); a part of [`MIN_SECRET`] (4) or 5 characters only whole;
//! shorter parts (`/0`, `v2`) are ignored: they cannot be told from ordinary
//! text. Matching is ASCII case-insensitive. Each match becomes
//! [`REDACTED`]; adjacent matches merge into one.
//!
//! Imports nothing of the crate (a leaf).

use std::borrow::Cow;
use std::sync::RwLock;

/// What a secret or a fragment of one becomes.
pub const REDACTED: &str = "[redacted]";

/// Shortest prefix or suffix of a part recognised as a fragment (characters).
pub const FRAGMENT: usize = 6;

/// Shortest part looked for at all (characters).
pub const MIN_SECRET: usize = 4;

/// A set of secrets and what to look for in text to hide them.
#[derive(Default, Clone, PartialEq, Eq)]
pub struct Scrubber {
    /// Parts, ASCII-lowercased, each at least [`MIN_SECRET`] bytes, no
    /// duplicates, and whether its prefixes and suffixes count too (not for
    /// a whole URL, whose prefix is a scheme and whose suffix may be a host).
    parts: Vec<(Vec<u8>, bool)>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scrubber({} parts)", self.parts.len())
    }
}

impl Scrubber {
    /// An empty scrubber: [`Scrubber::scrub`] returns text unchanged.
    pub const fn new() -> Scrubber {
        Scrubber { parts: Vec::new() }
    }

    /// Look for `secret` (and its fragments) from now on. A URL with a host
    /// is taken apart as the module doc says; anything else is one part.
    /// Empty or whitespace-only values are ignored.
    pub fn add(&mut self, secret: &str) {
        let secret = secret.trim();
        if secret.is_empty() {
            return;
        }
        match url::Url::parse(secret) {
            Ok(u) if u.has_host() => {
                self.add_part(secret, false);
                self.add_url_parts(&u);
            }
            _ => self.add_part(secret, true),
        }
    }

    fn add_url_parts(&mut self, u: &url::Url) {
        // Words of a path (`services`, `hooks`, `enqueue`) are not secret;
        // a segment or value counts alone only when it looks like a token.
        let token = |s: &&str| s.bytes().any(|b| b.is_ascii_digit()) || s.len() >= 16;
        let mut raw: Vec<&str> = Vec::new();
        raw.extend(Some(u.username()).filter(token));
        raw.extend(u.password());
        raw.push(u.path());
        raw.extend(u.path_segments().into_iter().flatten().filter(token));
        if let Some(q) = u.query() {
            raw.push(q);
            raw.extend(
                q.split('&')
                    .map(|pair| pair.split_once('=').map_or(pair, |(_, v)| v))
                    .filter(token),
            );
        }
        raw.extend(u.fragment());
        for r in raw {
            self.add_part(r, true);
            let decoded = percent_decode(r);
            if decoded != r {
                self.add_part(&decoded, true);
            }
        }
    }

    fn add_part(&mut self, part: &str, fragments: bool) {
        if part.chars().count() < MIN_SECRET {
            return;
        }
        let lower = (part.to_ascii_lowercase().into_bytes(), fragments);
        if !self.parts.contains(&lower) {
            self.parts.push(lower);
        }
    }

    /// True when nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// `text` with every part and fragment replaced by [`REDACTED`];
    /// borrowed unchanged when nothing matched.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.parts.is_empty() || text.len() < MIN_SECRET {
            return Cow::Borrowed(text);
        }
        let hay = text.to_ascii_lowercase().into_bytes();
        let mut mask = vec![false; hay.len()];
        let mut any = false;
        for (p, fragments) in &self.parts {
            any |= mark(&hay, p, *fragments, &mut mask);
        }
        if !any {
            return Cow::Borrowed(text);
        }
        // A match may stop inside a character: redact the whole character.
        for (start, ch) in text.char_indices() {
            let end = start + ch.len_utf8();
            if end - start > 1 && mask[start..end].contains(&true) {
                mask[start..end].iter_mut().for_each(|m| *m = true);
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while i < hay.len() {
            let start = i;
            let masked = mask[i];
            while i < hay.len() && mask[i] == masked {
                i += 1;
            }
            if masked {
                out.push_str(REDACTED);
            } else {
                out.push_str(&text[start..i]);
            }
        }
        Cow::Owned(out)
    }

    /// Scrub every string in a JSON value, keys included, in place.
    pub fn scrub_json(&self, v: &mut serde_json::Value) {
        use serde_json::Value;
        match v {
            Value::String(s) => {
                if let Cow::Owned(o) = self.scrub(s) {
                    *s = o;
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.scrub_json(x)),
            Value::Object(m) => {
                let taken = std::mem::take(m);
                for (k, mut x) in taken {
                    self.scrub_json(&mut x);
                    m.insert(self.scrub(&k).into_owned(), x);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

/// Mark in `mask` every occurrence in `hay` of `part`, and with `fragments`
/// for a part of [`FRAGMENT`] bytes or more every run that is a prefix or a
/// suffix of it of at least [`FRAGMENT`] bytes. Returns whether anything was
/// marked.
fn mark(hay: &[u8], part: &[u8], fragments: bool, mask: &mut [bool]) -> bool {
    let mut any = false;
    if part.len() < FRAGMENT || !fragments {
        for i in find_all(hay, part) {
            mask[i..i + part.len()].iter_mut().for_each(|m| *m = true);
            any = true;
        }
        return any;
    }
    // Prefixes: a hit of the first FRAGMENT bytes, extended forward.
    for i in find_all(hay, &part[..FRAGMENT]) {
        let mut k = FRAGMENT;
        while k < part.len() && i + k < hay.len() && hay[i + k] == part[k] {
            k += 1;
        }
        mask[i..i + k].iter_mut().for_each(|m| *m = true);
        any = true;
    }
    // Suffixes: a hit of the last FRAGMENT bytes, extended backward.
    let tail = part.len() - FRAGMENT;
    for i in find_all(hay, &part[tail..]) {
        let (mut s, mut p) = (i, tail);
        while s > 0 && p > 0 && hay[s - 1] == part[p - 1] {
            s -= 1;
            p -= 1;
        }
        mask[s..i + FRAGMENT].iter_mut().for_each(|m| *m = true);
        any = true;
    }
    any
}

/// Start offsets of every (overlapping) occurrence of `needle` in `hay`.
fn find_all<'a>(hay: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    let n = needle.len();
    let first = needle.first().copied();
    (0..hay.len().saturating_sub(n.saturating_sub(1)))
        .filter(move |&i| n > 0 && Some(hay[i]) == first && &hay[i..i + n] == needle)
}

/// `%XX` escapes decoded; anything not valid UTF-8 afterwards is kept as written.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

/// The process's secrets: every [`register`]ed value.
static REGISTRY: RwLock<Scrubber> = RwLock::new(Scrubber::new());

/// Add a secret to the process-wide scrubber (see [`Scrubber::add`]).
/// Called where a secret is read; registering twice is harmless.
pub fn register(secret: &str) {
    let mut r = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    r.add(secret);
}

/// `text` scrubbed of every secret registered in this process.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let r = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    match r.scrub(text) {
        Cow::Borrowed(_) => Cow::Borrowed(text),
        Cow::Owned(o) => Cow::Owned(o),
    }
}

/// [`scrub`] into an owned `String`.
pub fn scrubbed(text: &str) -> String {
    scrub(text).into_owned()
}

/// Every string of a JSON value scrubbed of the registered secrets, in place.
pub fn scrub_json(v: &mut serde_json::Value) {
    let r = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    if !r.is_empty() {
        r.scrub_json(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(secrets: &[&str]) -> Scrubber {
        let mut s = Scrubber::new();
        for x in secrets {
            s.add(x);
        }
        s
    }

    #[test]
    fn a_webhook_token_in_the_path_is_hidden_whole_and_in_parts() {
        let s = with(&["https://hooks.example.com/hooks/tok-7f3kq9zz81?sig=Zq81xw77ab"]);
        for body in [
            "404 no route for POST /hooks/tok-7f3kq9zz81",
            "unknown token tok-7f3kq9zz81",
            "token TOK-7F3KQ9ZZ81 revoked",
            "bad prefix tok-7f3k…",
            "ends in …3kq9zz81",
            "signature Zq81xw77ab expired",
            "query sig=Zq81xw77ab",
        ] {
            let out = s.scrub(body);
            for frag in ["7f3kq9", "tok-7f", "q9zz81", "zq81xw", "xw77ab"] {
                assert!(!out.to_lowercase().contains(frag), "{body} → {out}");
            }
            assert!(out.contains(REDACTED), "{out}");
        }
        // Host and scheme are not secret.
        assert_eq!(
            s.scrub("could not reach hooks.example.com"),
            "could not reach hooks.example.com"
        );
    }

    #[test]
    fn key_prefixes_and_suffixes_of_six_or_more_are_hidden() {
        let s = with(&["sk-live-Abc123XYZ987"]);
        assert_eq!(
            s.scrub("Incorrect API key provided: sk-live-A***********Z987."),
            "Incorrect API key provided: [redacted]***********Z987."
        );
        assert_eq!(
            s.scrub("key ...XYZ987 is revoked"),
            "key ...[redacted] is revoked"
        );
        assert_eq!(s.scrub("sk-liv"), REDACTED);
        // Five characters of it are not a recognisable fragment.
        assert_eq!(s.scrub("sk-li and Z987"), "sk-li and Z987");
    }

    #[test]
    fn userinfo_query_values_and_encoded_forms_are_hidden() {
        let s = with(&["redis://admin:p%40ssw0rd-99@redis.internal:6379/0"]);
        let out = s.scrub("AUTH failed for admin with p@ssw0rd-99 (p%40ssw0rd-99)");
        assert!(
            !out.contains("p@ssw0rd") && !out.contains("ssw0rd"),
            "{out}"
        );
        // `/0` and the host are left alone.
        assert_eq!(
            s.scrub("redis.internal:6379/0 refused"),
            "redis.internal:6379/0 refused"
        );
        let s = with(&["http://127.0.0.1:9/send?channel=ops&token=Qz9-88xkLm"]);
        assert!(!s.scrub("bad token Qz9-88xkLm").contains("88xk"));
    }

    #[test]
    fn short_values_and_unrelated_text_are_left_alone() {
        let s = with(&["abc", "", "   "]);
        assert!(s.is_empty());
        assert_eq!(s.scrub("abc abc"), "abc abc");
        let s = with(&["R0UT"]);
        assert_eq!(
            s.scrub("key R0UT1 and r0ut"),
            "key [redacted]1 and [redacted]"
        );
        let s = with(&["0123456789abcdef"]);
        assert!(matches!(s.scrub("nothing to see"), Cow::Borrowed(_)));
    }

    #[test]
    fn non_ascii_text_around_a_match_stays_valid() {
        let s = with(&["tök-7f3kq9zz81"]);
        assert_eq!(s.scrub("é tök-7f3kq9zz81 é"), "é [redacted] é");
        assert_eq!(s.scrub("tök-7f3kq9zz8é"), "[redacted]é");
        // A prefix match that stops inside a character (ö and é share their
        // first byte) takes the whole character.
        let s = with(&["abcdefö123"]);
        assert_eq!(s.scrub("abcdefé!"), "[redacted]!");
        assert_eq!(s.scrub("ééé"), "ééé");
    }

    #[test]
    fn json_strings_and_keys_are_scrubbed() {
        let s = with(&["tok-7f3kq9zz81"]);
        let mut v = serde_json::json!({"a": ["x tok-7f3kq9zz81"], "tok-7f3kq9zz81": 1, "n": 2});
        s.scrub_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"a": ["x [redacted]"], "[redacted]": 1, "n": 2})
        );
    }
}
