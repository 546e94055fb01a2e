//! The multi-error diagnosis: every type error serde would stop at, found
//! in one run by pruning what failed and parsing again, each mapped back to
//! its line and column.

use super::*;

/// How many keys or tables [`recover`] drops before it stops looking.
pub(super) const MAX_TYPE_ERRORS: usize = 32;

/// serde stops at the first type error (a wrong type, an unknown key or kind,
/// a bad duration, a missing field). To report the others in the same run,
/// drop what it named from a copy of the document (the key, or for a missing
/// field the table that lacks it) and parse again, until the rest parses or a
/// TOML syntax error leaves nothing to drop. Returns the config that parsed
/// without what was dropped, if it came to that, and every error, positioned
/// in the original text.
pub(super) fn recover(
    locator: &Locator<'_>,
    first: &toml::de::Error,
) -> (Option<Config>, Vec<ConfigError>, Pruned) {
    let mut errors = vec![locator.locate_toml_error(first)];
    let mut pruned = Pruned::default();
    let Ok(mut doc) = locator.text.parse::<toml_edit::DocumentMut>() else {
        return (None, errors, pruned);
    };
    let mut text = locator.text.to_string();
    let mut error = first.clone();
    for _ in 0..MAX_TYPE_ERRORS {
        let here = Locator::new(locator.file, &text);
        let Some(path) = error.span().and_then(|s| here.path_at(s.start)) else {
            break;
        };
        // An unknown kind becomes the first valid one rather than leaving its
        // table without a required field, so the rest of the table is checked.
        let fixed = match (
            unknown_variant(error.message()),
            first_variant(error.message()),
        ) {
            (Some(bad), Some(v)) => pruned.replace_path(doc.as_table_mut(), &path, bad, v),
            _ => pruned.drop_path(doc.as_table_mut(), &path),
        };
        if !fixed {
            break;
        }
        text = doc.to_string();
        error = match toml::from_str::<Config>(&text) {
            Ok(config) => return (Some(config), errors, pruned),
            Err(e) => e,
        };
        let here = Locator::new(locator.file, &text);
        let Some(at) = error.span().and_then(|s| here.path_at(s.start)) else {
            errors.push(locator.at_path("(document)", &explain_serde(error.message())));
            break;
        };
        let at = pruned.original(&at);
        // A missing field this search dropped itself was reported already.
        let ours =
            missing_field(error.message()).is_some_and(|f| pruned.covers(&format!("{at}.{f}")));
        if !ours {
            errors.push(locator.at_path(&at, &explain_serde(error.message())));
        }
    }
    (None, errors, pruned)
}

/// `unknown variant `x`, expected one of `a`, `b`` → `a`.
pub(super) fn first_variant(message: &str) -> Option<&str> {
    let (_, options) = message.trim().split_once("unknown variant `")?;
    let (_, options) = options.split_once("expected one of `")?;
    options.split('`').next()
}

/// `unknown variant `x`, expected one of `a`, `b`` → `x`.
pub(super) fn unknown_variant(message: &str) -> Option<&str> {
    let (_, rest) = message.trim().split_once("unknown variant `")?;
    rest.split('`').next()
}

/// `missing field `kind`` → `kind`.
pub(super) fn missing_field(message: &str) -> Option<&str> {
    let rest = message.trim().strip_prefix("missing field `")?;
    rest.split('`').next()
}

/// What [`recover`] dropped from its copy of the document.
#[derive(Default)]
pub(super) struct Pruned {
    /// Dropped paths, in the original document's indexes.
    dropped: Vec<String>,
    /// `[[...]]` elements removed, in order: (array path in the copy as it
    /// was then, index). Later siblings in the copy sit one index lower.
    removed: Vec<(String, usize)>,
}

impl Pruned {
    /// Drop `path` (in the copy's indexes) from the copy: a key, a table, or
    /// one `[[...]]` element. False if there is no such thing.
    pub(super) fn drop_path(&mut self, root: &mut toml_edit::Table, path: &str) -> bool {
        let parts: Vec<&str> = path.split('.').collect();
        let Some((last, parents)) = parts.split_last() else {
            return false;
        };
        let Some(table) = table_at(root, parents) else {
            return false;
        };
        let removed = match split_index(last) {
            (key, None) => table.remove(key).map(|_| None),
            (key, Some(i)) => table
                .get_mut(key)
                .and_then(|v| v.as_array_of_tables_mut())
                .filter(|array| i < array.len())
                .map(|array| {
                    array.remove(i);
                    Some((path[..path.len() - last.len()].to_string() + key, i))
                }),
        };
        let Some(element) = removed else {
            return false;
        };
        self.dropped.push(self.original(path));
        self.removed.extend(element);
        true
    }

    /// Replace the unknown enum value `bad` at `path` (a key in the copy's
    /// indexes) by `value`: the string itself, or in a list of enum values
    /// (`feeds = ["book", "nope"]`, where serde names the list) each entry
    /// that is `bad`, so the list keeps its type and no second, spurious
    /// error follows. False if there is nothing to replace.
    pub(super) fn replace_path(
        &mut self,
        root: &mut toml_edit::Table,
        path: &str,
        bad: &str,
        value: &str,
    ) -> bool {
        let parts: Vec<&str> = path.split('.').collect();
        let Some((last, parents)) = parts.split_last() else {
            return false;
        };
        let Some(slot) = table_at(root, parents).and_then(|t| t.get_mut(last)) else {
            return false;
        };
        let replaced = if let Some(list) = slot.as_array_mut() {
            let at: Vec<usize> = (0..list.len())
                .filter(|&i| list.get(i).and_then(|v| v.as_str()) == Some(bad))
                .collect();
            for &i in &at {
                list.replace(i, value);
            }
            !at.is_empty()
        } else if slot.as_str() == Some(value) {
            false
        } else {
            *slot = toml_edit::value(value);
            true
        };
        if replaced {
            self.dropped.push(self.original(path));
        }
        replaced
    }

    /// A path in the copy's indexes, in the original's.
    pub(super) fn original(&self, path: &str) -> String {
        let mut path = path.to_string();
        for (array, index) in self.removed.iter().rev() {
            let head = format!("{array}[");
            let Some(rest) = path.strip_prefix(&head) else {
                continue;
            };
            let Some((i, tail)) = rest.split_once(']') else {
                continue;
            };
            if let Ok(i) = i.parse::<usize>()
                && i >= *index
            {
                path = format!("{head}{}]{tail}", i + 1);
            }
        }
        path
    }

    /// `path` (original indexes) was dropped or replaced, or lies below or
    /// above something that was: what validation says there may be our doing
    /// (an emptied list, a default in place of a bad value).
    pub(super) fn covers(&self, path: &str) -> bool {
        self.dropped
            .iter()
            .any(|d| is_within(path, d) || is_within(d, path))
    }
}

/// `path` is `prefix` or lies below it (`a.b` is within `a`, `a.bc` is not).
pub(super) fn is_within(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// The table (or inline table) at a dotted path such as `exchanges[0].rate_limit`.
pub(super) fn table_at<'t>(
    root: &'t mut toml_edit::Table,
    parts: &[&str],
) -> Option<&'t mut dyn toml_edit::TableLike> {
    let mut table: &mut dyn toml_edit::TableLike = root;
    for part in parts {
        let next = table.get_mut(split_index(part).0)?;
        table = match split_index(part).1 {
            None => next.as_table_like_mut()?,
            Some(i) => next.as_array_of_tables_mut()?.get_mut(i)?,
        };
    }
    Some(table)
}

/// `endpoints[2]` → (`endpoints`, Some(2)); `interval` → (`interval`, None).
pub(super) fn split_index(part: &str) -> (&str, Option<usize>) {
    match part.find('[') {
        Some(i) => (
            &part[..i],
            part[i + 1..part.len().saturating_sub(1)]
                .parse::<usize>()
                .ok(),
        ),
        None => (part, None),
    }
}

/// Maps byte offsets and field paths back to lines and columns.
pub(super) struct Locator<'a> {
    file: &'a str,
    text: &'a str,
    doc: Option<toml_edit::Document<&'a str>>,
}

impl<'a> Locator<'a> {
    pub(super) fn new(file: &'a str, text: &'a str) -> Self {
        Locator {
            file,
            text,
            doc: toml_edit::Document::parse(text).ok(),
        }
    }

    pub(super) fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rfind('\n').map(|i| offset - i).unwrap_or(offset + 1);
        (line, col)
    }

    pub(super) fn locate_toml_error(&self, e: &toml::de::Error) -> ConfigError {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        let (line, column) = self.line_col(offset);
        let field = self
            .path_at(offset)
            .or_else(|| field_from_text(self.text, offset))
            .unwrap_or_else(|| "(document)".into());
        ConfigError {
            file: self.file.into(),
            line,
            column,
            field,
            message: explain_serde(e.message()),
        }
    }

    /// The dotted path of the deepest item that starts at or before `offset`.
    pub(super) fn path_at(&self, offset: usize) -> Option<String> {
        let root = self.doc.as_ref()?.as_item().as_table()?;
        let path = descend_table(root, offset, String::new());
        if path.is_empty() { None } else { Some(path) }
    }

    /// Position of a field path produced by validation; falls back to the
    /// deepest parent that exists in the file (a missing field points at its table).
    pub(super) fn at_path(&self, path: &str, message: &str) -> ConfigError {
        let parts: Vec<&str> = path.split('.').collect();
        let offset = self
            .doc
            .as_ref()
            .and_then(|d| d.as_item().as_table())
            .and_then(|t| span_of_path(t, &parts))
            .unwrap_or(0);
        let (line, column) = self.line_col(offset);
        ConfigError {
            file: self.file.into(),
            line,
            column,
            field: path.into(),
            message: message.into(),
        }
    }
}

/// The field at `offset` of a document that does not parse (so has no
/// tree to descend): the table of the last `[header]` or `[[header]]` line
/// up to it, and the key of its own line, if the line has one. `[journal]`
/// twice gives `journal`; `interval` twice under `[defaults]` gives
/// `defaults.interval`; a bad value in the second `[[exchanges]]` gives
/// `exchanges[1].kind`.
fn field_from_text(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let upto: Vec<&str> = text[..line_end].lines().collect();
    let last = upto.last()?;
    let key = header_of(last)
        .is_none()
        .then(|| {
            last.split_once('=')
                .map(|(k, _)| k.trim().trim_matches('"'))
        })
        .flatten()
        .filter(|k| !k.is_empty() && !k.starts_with('#'));
    let table = upto
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, l)| header_of(l).map(|h| (i, h)))
        .filter(|(_, (name, _))| !name.is_empty())
        .map(|(i, (name, _))| indexed(&upto[..=i], &name));
    match (table, key) {
        (Some(t), Some(k)) => Some(format!("{t}.{k}")),
        (None, Some(k)) => Some(k.to_string()),
        (t, None) => t,
    }
}

/// `(name, is_array)` of a `[name]` or `[[name]]` line.
fn header_of(line: &str) -> Option<(String, bool)> {
    let l = line.trim();
    let inner = l.strip_prefix('[')?;
    let array = inner.starts_with('[');
    let name = inner.trim_start_matches('[').split(']').next()?.trim();
    Some((name.to_string(), array))
}

/// `a.b` as `a[i].b[j]` for the parts declared as arrays of tables in
/// `lines` (the document up to and including the header): each index
/// counts that part's `[[...]]` headers since its parent's last one.
fn indexed(lines: &[&str], name: &str) -> String {
    let parts: Vec<&str> = name.split('.').collect();
    let mut out = String::new();
    let mut from = 0;
    for k in 0..parts.len() {
        let prefix = parts[..=k].join(".");
        let positions: Vec<usize> = lines[from..]
            .iter()
            .enumerate()
            .filter(|(_, l)| header_of(l).is_some_and(|(n, arr)| arr && n == prefix))
            .map(|(i, _)| from + i)
            .collect();
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(parts[k]);
        if let Some(&last) = positions.last() {
            out.push_str(&format!("[{}]", positions.len() - 1));
            from = last;
        }
    }
    out
}

pub(super) fn descend_table(t: &toml_edit::Table, offset: usize, mut path: String) -> String {
    let mut best: Option<(&str, &toml_edit::Item, usize)> = None;
    for (k, v) in t.iter() {
        // A `[[a.b]]` header starts before its key `b`: take whichever comes first.
        let key_start = t.key(k).and_then(|key| key.span()).map(|s| s.start);
        let start = match (key_start, first_span(v)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(s) = start
            && s <= offset
            && best.is_none_or(|(_, _, b)| s > b)
        {
            best = Some((k, v, s));
        }
    }
    if let Some((k, v, _)) = best {
        push_key(&mut path, k);
        match v {
            toml_edit::Item::Table(inner) => return descend_table(inner, offset, path),
            toml_edit::Item::ArrayOfTables(a) => {
                let mut chosen = None;
                for (i, t) in a.iter().enumerate() {
                    if let Some(s) = t.span()
                        && s.start <= offset
                    {
                        chosen = Some((i, t));
                    }
                }
                if let Some((i, t)) = chosen {
                    path.push_str(&format!("[{i}]"));
                    return descend_table(t, offset, path);
                }
            }
            toml_edit::Item::Value(toml_edit::Value::InlineTable(it)) => {
                for (ik, iv) in it.iter() {
                    if contains(iv.span(), offset) {
                        push_key(&mut path, ik);
                    }
                }
            }
            _ => {}
        }
    }
    path
}

pub(super) fn first_span(item: &toml_edit::Item) -> Option<usize> {
    match item {
        toml_edit::Item::ArrayOfTables(a) => {
            a.iter().filter_map(|t| t.span()).map(|s| s.start).min()
        }
        other => other.span().map(|s| s.start),
    }
}

pub(super) fn contains(span: Option<std::ops::Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
}

pub(super) fn push_key(path: &mut String, k: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(k);
}

/// Span start of `a.b[2].c`, or of the deepest existing parent.
pub(super) fn span_of_path(t: &toml_edit::Table, parts: &[&str]) -> Option<usize> {
    let (part, rest) = parts.split_first()?;
    let (key, index) = split_index(part);
    let (k, v) = t.get_key_value(key)?;
    let here = k.span().map(|s| s.start).or_else(|| first_span(v));
    let deeper = match (v, index) {
        (toml_edit::Item::ArrayOfTables(a), Some(i)) => a
            .get(i)
            .and_then(|inner| span_of_path(inner, rest).or_else(|| inner.span().map(|s| s.start))),
        (toml_edit::Item::Table(inner), None) => span_of_path(inner, rest),
        // One entry of a plain array (`inhibit_kinds[1]`): its own line.
        (toml_edit::Item::Value(toml_edit::Value::Array(arr)), Some(i)) => {
            arr.get(i).and_then(|v| v.span()).map(|s| s.start)
        }
        (toml_edit::Item::Value(toml_edit::Value::InlineTable(it)), None) => rest
            .first()
            .and_then(|r| it.get_key_value(r))
            .and_then(|(k, v)| k.span().or_else(|| v.span()))
            .map(|s| s.start),
        _ => None,
    };
    deeper.or(here)
}

pub(super) fn explain_serde(message: &str) -> String {
    let m = message.trim();
    if let Some(rest) = m.strip_prefix("unknown field ") {
        return format!("unknown key {rest}");
    }
    m.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> toml_edit::DocumentMut {
        text.parse().expect("toml")
    }

    #[test]
    fn an_unknown_variant_in_a_list_is_replaced_in_the_list() {
        let mut d = doc("[t]\nfeeds = [\"book\", \"nope\", \"nope\"]\n");
        let mut pruned = Pruned::default();
        assert!(pruned.replace_path(d.as_table_mut(), "t.feeds", "nope", "ticker"));
        let list = d["t"]["feeds"].as_array().expect("still a list");
        let got: Vec<&str> = list.iter().filter_map(|v| v.as_str()).collect();
        assert_eq!(got, ["book", "ticker", "ticker"]);
        assert!(pruned.covers("t.feeds[1]"));
        // Nothing of that name left: nothing to replace, so the caller stops.
        assert!(!pruned.replace_path(d.as_table_mut(), "t.feeds", "nope", "ticker"));
    }

    #[test]
    fn an_unknown_variant_of_a_key_is_replaced_by_the_first_valid_one() {
        let mut d = doc("[t]\nkind = \"nope\"\n");
        let mut pruned = Pruned::default();
        assert!(pruned.replace_path(d.as_table_mut(), "t.kind", "nope", "time"));
        assert_eq!(d["t"]["kind"].as_str(), Some("time"));
        assert!(!pruned.replace_path(d.as_table_mut(), "t.kind", "nope", "time"));
        let message = "unknown variant `nope`, expected one of `time`, `ticker`";
        assert_eq!(unknown_variant(message), Some("nope"));
        assert_eq!(first_variant(message), Some("time"));
    }
}
