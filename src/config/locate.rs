//! Maps key paths such as `clouds[0].auth.secret_key_file` to lines of the TOML source and back,
//! so every config problem can name its line. Reads spans only; it must not judge values.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits `a.b[2].c` into steps. Keys never contain `.` or `[` in our schema except inside
/// user-chosen label maps, where a lookup simply falls back to the nearest parent.
fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Step::Key(key));
        }
        while let Some(stripped) = rest.strip_prefix('[') {
            let Some(end) = stripped.find(']') else { break };
            if let Ok(i) = stripped[..end].parse() {
                out.push(Step::Index(i));
            }
            rest = &stripped[end + 1..];
        }
    }
    out
}

/// A parsed source that answers "which line is this key on?" many times cheaply.
pub struct Locator<'s> {
    source: &'s str,
    root: Option<Spanned<DeTable<'s>>>,
}

impl<'s> Locator<'s> {
    /// Parses `source` once; a source that does not parse locates nothing.
    pub fn new(source: &'s str) -> Self {
        Self {
            source,
            root: DeTable::parse(source).ok(),
        }
    }

    /// The 1-based line of `key_path`, or of its nearest ancestor present in the file (a
    /// missing key is reported at the table that should hold it).
    pub fn line(&self, key_path: &str) -> Option<usize> {
        self.offset(key_path).map(|o| line_of(self.source, o))
    }

    fn offset(&self, key_path: &str) -> Option<usize> {
        let root = self.root.as_ref()?;
        let mut best: Option<usize> = None;
        let mut current: Current<'_, 's> = Current::Table(root.get_ref());
        for step in steps(key_path) {
            let next = match (current, step) {
                (Current::Table(t), Step::Key(k)) => t
                    .iter()
                    .find(|(key, _)| key.get_ref().as_ref() == k)
                    .map(|(key, v)| (key.span().start, v)),
                (Current::Array(a), Step::Index(i)) => a.get(i).map(|v| (v.span().start, v)),
                _ => None,
            };
            let Some((start, value)) = next else { break };
            best = Some(start);
            current = match value.get_ref() {
                DeValue::Table(t) => Current::Table(t),
                DeValue::Array(a) => Current::Array(a),
                _ => Current::Leaf,
            };
        }
        best
    }

    /// The key path (`clouds[0].auth.foo`) whose key or value covers byte `offset`, the
    /// narrowest match first; used to name the key in serde errors, which carry only a span.
    /// (Spans of `[table]` values cover only their header, so every node is searched.)
    pub fn path_at(&self, offset: usize) -> Option<String> {
        let root = self.root.as_ref()?;
        let mut best: Option<(usize, String)> = None;
        let mut visit = |path: &str, span: std::ops::Range<usize>| {
            if span.contains(&offset) && best.as_ref().is_none_or(|(len, _)| span.len() <= *len) {
                best = Some((span.len(), path.to_string()));
            }
        };
        walk(&DeValue::Table(root.get_ref().clone()), "", &mut visit);
        best.map(|(_, p)| p)
    }
}

/// Calls `visit(path, span)` for every key span, value span and array element below `value`.
fn walk(value: &DeValue<'_>, path: &str, visit: &mut dyn FnMut(&str, std::ops::Range<usize>)) {
    match value {
        DeValue::Table(t) => {
            for (key, v) in t {
                let p = if path.is_empty() {
                    key.get_ref().to_string()
                } else {
                    format!("{path}.{}", key.get_ref())
                };
                visit(&p, key.span());
                visit(&p, v.span());
                walk(v.get_ref(), &p, visit);
            }
        }
        DeValue::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                let p = format!("{path}[{i}]");
                visit(&p, v.span());
                walk(v.get_ref(), &p, visit);
            }
        }
        _ => {}
    }
}

#[derive(Clone, Copy)]
enum Current<'a, 's> {
    Table(&'a DeTable<'s>),
    Array(&'a [Spanned<DeValue<'s>>]),
    Leaf,
}

/// 1-based line of byte `offset` in `source`.
pub fn line_of(source: &str, offset: usize) -> usize {
    let end = offset.min(source.len());
    source.as_bytes()[..end].split(|b| *b == b'\n').count()
}

/// 1-based column (in characters) of byte `offset` in `source`.
pub fn column_of(source: &str, offset: usize) -> usize {
    let end = offset.min(source.len());
    let line_start = source[..end].rfind('\n').map_or(0, |i| i + 1);
    source
        .get(line_start..end)
        .map_or(1, |s| s.chars().count() + 1)
}

/// Convenience for one lookup: the line of `key_path` in `source`.
pub fn locate(source: &str, key_path: &str) -> Option<usize> {
    Locator::new(source).line(key_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = r#"# comment
[[clouds]]
name = "a"
region = "eu-de"
[clouds.auth]
type = "aksk"
access_key = "AK"

[[clouds]]
name = "b"
region = "EU DE"

[poll]
interval = "10ms"

[[images]]
id = "x"
channels = ["a",
  "nope"]
"#;

    #[test]
    fn finds_keys_in_arrays_of_tables() {
        let l = Locator::new(SRC);
        assert_eq!(l.line("clouds[0].name"), Some(3));
        assert_eq!(l.line("clouds[1].region"), Some(11));
        assert_eq!(l.line("clouds[0].auth.access_key"), Some(7));
        assert_eq!(l.line("poll.interval"), Some(14));
        assert_eq!(l.line("images[0].channels[1]"), Some(19));
    }

    #[test]
    fn missing_key_falls_back_to_parent() {
        let l = Locator::new(SRC);
        // `secret_key` is missing: report where `[clouds.auth]` of cloud 0 is.
        assert_eq!(l.line("clouds[0].auth.secret_key"), Some(5));
        assert_eq!(l.line("web.listen"), None);
    }

    #[test]
    fn path_at_names_the_key() {
        let off = SRC.find("access_key").unwrap();
        assert_eq!(
            Locator::new(SRC).path_at(off).as_deref(),
            Some("clouds[0].auth.access_key")
        );
        assert_eq!(line_of(SRC, off), 7);
        assert_eq!(column_of(SRC, off), 1);
    }

    #[test]
    fn steps_parse() {
        assert_eq!(
            steps("a[1].b[2][3]"),
            vec![
                Step::Key("a"),
                Step::Index(1),
                Step::Key("b"),
                Step::Index(2),
                Step::Index(3)
            ]
        );
    }
}
