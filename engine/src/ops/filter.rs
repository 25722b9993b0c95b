//! Choosing what a backup leaves out.
//!
//! Patterns are matched against absolute paths. A pattern that starts with `/`
//! must match the whole path; any other pattern matches the end of a path at
//! any depth (`*.o`, `cache/tmp`). `*` and `?` stay within one name, `**`
//! spans any number of directories. An excluded directory is left out with
//! everything below it.

use crate::error::{Error, Result};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use std::fs::Metadata;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The first bytes of a valid `CACHEDIR.TAG` (the Cache Directory Tagging Specification).
const CACHEDIR_SIGNATURE: &[u8] = b"Signature: 8a477f597d28d172789f06886806bc55";

/// What to leave out of a backup.
#[derive(Clone, Debug, Default)]
pub struct FilterOptions {
    /// Patterns of paths to leave out.
    pub exclude: Vec<String>,
    /// Patterns of paths to leave out, matched without regard to case.
    pub iexclude: Vec<String>,
    /// Leave out directories that contain an entry with one of these names.
    pub exclude_if_present: Vec<String>,
    /// Leave out directories tagged with a valid `CACHEDIR.TAG`.
    pub exclude_caches: bool,
    /// Leave out files larger than this many bytes.
    pub exclude_larger_than: Option<u64>,
    /// Do not descend into directories on other file systems than the backed-up path's;
    /// such mount points are recorded as empty directories.
    pub one_file_system: bool,
}

/// Compiled [`FilterOptions`].
#[derive(Debug)]
pub struct Filter {
    patterns: PatternSet,
    opts: FilterOptions,
}

/// What to do with one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Back it up.
    Include,
    /// Leave it out.
    Exclude,
    /// Record the directory itself but nothing below it.
    EmptyDir,
}

/// Path patterns with the semantics described at the top of this module.
#[derive(Debug)]
pub struct PatternSet {
    set: GlobSet,
    empty: bool,
}

impl PatternSet {
    /// Compiles `patterns` (case-sensitive) and `ipatterns` (case-insensitive);
    /// a malformed pattern is an error naming it.
    pub fn new(patterns: &[String], ipatterns: &[String]) -> Result<PatternSet> {
        let mut set = GlobSetBuilder::new();
        let all = patterns
            .iter()
            .map(|p| (p, false))
            .chain(ipatterns.iter().map(|p| (p, true)));
        for (pattern, icase) in all {
            set.add(glob(pattern, icase)?);
        }
        let set = set
            .build()
            .map_err(|e| Error::Invalid(format!("invalid patterns: {e}")))?;
        Ok(PatternSet {
            set,
            empty: patterns.is_empty() && ipatterns.is_empty(),
        })
    }

    /// Like [`PatternSet::new`], for patterns of paths to leave out: a
    /// pattern that leaves out every path (`*`, `**`, `/*`) is refused, since
    /// it would make an empty backup or restore look like a success.
    pub fn exclusions(patterns: &[String], ipatterns: &[String]) -> Result<PatternSet> {
        let set = PatternSet::new(patterns, ipatterns)?;
        let all = patterns
            .iter()
            .map(|p| (p, false))
            .chain(ipatterns.iter().map(|p| (p, true)));
        for (pattern, icase) in all {
            let one = glob(pattern, icase)?.compile_matcher();
            if EVERY_PATH.iter().all(|p| one.is_match(p)) {
                return Err(Error::Invalid(format!(
                    "exclude pattern {pattern:?} leaves out every path: nothing would be saved"
                )));
            }
        }
        Ok(set)
    }

    /// True when some pattern matches the absolute path `path`.
    pub fn is_match(&self, path: impl AsRef<Path>) -> bool {
        self.set.is_match(path.as_ref())
    }

    /// True when there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.empty
    }
}

/// Top-level paths with names that have nothing in common: a pattern that
/// leaves out all of them leaves out everything.
const EVERY_PATH: [&str; 5] = ["/0", "/A.b", "/.hidden", "/x y~", "/\u{e9}t\u{e9}"];

/// Compiles one pattern, anchored as described at the top of this module.
/// An empty pattern (as an unset shell variable gives) is refused.
fn glob(pattern: &str, icase: bool) -> Result<globset::Glob> {
    if pattern.trim().trim_matches('/').is_empty() {
        return Err(Error::Invalid(format!(
            "empty pattern {pattern:?}: a pattern must name something (is a shell variable unset?)"
        )));
    }
    let anchored = if pattern.starts_with('/') {
        pattern.to_string()
    } else {
        format!("**/{pattern}")
    };
    GlobBuilder::new(anchored.trim_end_matches('/'))
        .literal_separator(true)
        .case_insensitive(icase)
        .build()
        .map_err(|e| Error::Invalid(format!("invalid pattern {pattern:?}: {e}")))
}

impl Filter {
    /// Compiles the patterns; a malformed pattern is an error naming it.
    pub fn new(opts: FilterOptions) -> Result<Filter> {
        let patterns = PatternSet::exclusions(&opts.exclude, &opts.iexclude)?;
        Ok(Filter { patterns, opts })
    }

    /// The verdict for the entry at `path` whose `lstat` is `meta`, below a
    /// backed-up path on device `root_device`.
    pub fn judge(&self, path: &Path, meta: &Metadata, root_device: u64) -> Verdict {
        if self.patterns.is_match(path) {
            return Verdict::Exclude;
        }
        if meta.is_file()
            && self
                .opts
                .exclude_larger_than
                .is_some_and(|limit| meta.len() > limit)
        {
            return Verdict::Exclude;
        }
        if meta.is_dir() {
            if self
                .opts
                .exclude_if_present
                .iter()
                .any(|name| path.join(name).symlink_metadata().is_ok())
            {
                return Verdict::Exclude;
            }
            if self.opts.exclude_caches && is_tagged_cache(path) {
                return Verdict::Exclude;
            }
            if self.opts.one_file_system && meta.dev() != root_device {
                return Verdict::EmptyDir;
            }
        }
        Verdict::Include
    }
}

fn is_tagged_cache(dir: &Path) -> bool {
    let mut head = [0u8; CACHEDIR_SIGNATURE.len()];
    std::fs::File::open(dir.join("CACHEDIR.TAG"))
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|_| head == CACHEDIR_SIGNATURE)
}

/// Parses a size such as `500`, `64K`, `10M`, `2G` or `1T` (binary units).
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let shift = match unit
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => {
            return Err(Error::Invalid(format!(
                "invalid size {text:?}: use a number with K, M, G or T"
            )))
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| {
            Error::Invalid(format!(
                "invalid size {text:?}: use a number with K, M, G or T"
            ))
        })
}

/// Reads patterns or paths from a list file: one per line, blank lines and
/// lines starting with `#` ignored.
pub fn read_list(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    Ok(text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("500").unwrap(), 500);
        assert_eq!(parse_size("64K").unwrap(), 64 << 10);
        assert_eq!(parse_size("10MiB").unwrap(), 10 << 20);
        assert_eq!(parse_size("2g").unwrap(), 2 << 30);
        assert!(parse_size("12X").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn empty_and_match_everything_exclusions_are_refused() {
        let refused = |p: &str| {
            let err = PatternSet::exclusions(&[p.to_string()], &[]).unwrap_err();
            assert!(err.to_string().contains(&format!("{p:?}")), "{p:?}: {err}");
            let err = PatternSet::exclusions(&[], &[p.to_string()]).unwrap_err();
            assert!(err.to_string().contains(&format!("{p:?}")), "{p:?}: {err}");
        };
        for p in ["", " ", "/", "*", "**", "***", "/*", "/**", "**/*", "*/"] {
            refused(p);
        }
        for p in [
            "a", "*.o", "/home/*", ".*", "?", "[a-z]*", "*.*", "**/cache", "/*/*",
        ] {
            PatternSet::exclusions(&[p.to_string()], &[]).expect(p);
        }
        // An include of everything is what it says.
        PatternSet::new(&["*".to_string()], &[]).unwrap();
        assert!(PatternSet::new(&[String::new()], &[]).is_err());
    }

    #[test]
    fn a_malformed_pattern_is_named() {
        let err = Filter::new(FilterOptions {
            exclude: vec!["a[".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("a["), "{err}");
    }
}
