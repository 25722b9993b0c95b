//! Going one directory deeper in a walk of a snapshot's trees: every
//! recursive walk does it here, so that a hostile chain of nested trees can
//! neither overflow the stack nor nest beyond [`MAX_DEPTH`].

use crate::error::{Error, Result};
use cairn_format::tree::MAX_DEPTH;
use cairn_format::BlobId;
use std::collections::{HashMap, HashSet};

/// Stack left free below the caller before a walk moves to a fresh segment
/// (frames of the walks are a few KiB even in unoptimized builds).
const RED_ZONE: usize = 256 * 1024;

/// Size of each fresh stack segment.
const SEGMENT: usize = 4 * 1024 * 1024;

/// Runs `f` with the level of the directory below one at `depth` (the root
/// tree is level 0), on a fresh stack segment when this thread's stack runs
/// low. Past [`MAX_DEPTH`] it refuses, naming the directory `path` gives.
pub(crate) fn descend<T>(
    depth: usize,
    path: impl FnOnce() -> String,
    f: impl FnOnce(usize) -> Result<T>,
) -> Result<T> {
    if depth >= MAX_DEPTH {
        return Err(Error::TooDeep(shorten(path())));
    }
    grow(|| f(depth + 1))
}

/// Runs `f`, on a fresh stack segment when this thread's stack runs low: for
/// recursions bounded by something other than the nesting limit.
pub(crate) fn grow<T>(f: impl FnOnce() -> T) -> T {
    stacker::maybe_grow(RED_ZONE, SEGMENT, f)
}

/// A walk's result for one tree, with its height: the levels of directories
/// below it, or `None` when the walk stopped at [`MAX_DEPTH`] (the result
/// then depends on the level where the tree was reached).
pub(crate) type Walked<T> = (T, Option<usize>);

/// The height of a tree once a directory in it of height `child` is counted
/// (`None` for a directory refused as too deep).
pub(crate) fn taller(height: Option<usize>, child: Option<usize>) -> Option<usize> {
    height.zip(child).map(|(h, c)| h.max(c + 1))
}

/// Results of a walk by tree, so that each tree is read once. A result is
/// reused wherever the tree is reached again, unless the tree would nest too
/// deep there; a walk that stopped at the limit is reused at its level only.
pub(crate) struct Memo<T> {
    whole: HashMap<BlobId, (T, usize)>,
    cut: HashMap<(BlobId, usize), T>,
}

impl<T: Clone> Memo<T> {
    pub(crate) fn new() -> Self {
        Memo {
            whole: HashMap::new(),
            cut: HashMap::new(),
        }
    }

    /// The result for tree `id` reached at `level`, if it is known.
    pub(crate) fn get(&self, id: &BlobId, level: usize) -> Option<Walked<T>> {
        match self.whole.get(id) {
            Some((v, h)) if level + h <= MAX_DEPTH => Some((v.clone(), Some(*h))),
            _ => self.cut.get(&(*id, level)).map(|v| (v.clone(), None)),
        }
    }

    /// Records the result for tree `id` reached at `level`.
    pub(crate) fn put(&mut self, id: BlobId, level: usize, (value, height): Walked<T>) {
        match height {
            Some(h) => self.whole.insert(id, (value, h)).map(drop),
            None => self.cut.insert((id, level), value).map(drop),
        };
    }

    /// The trees read, each once.
    pub(crate) fn ids(&self) -> HashSet<&BlobId> {
        let cut = self.cut.keys().map(|(id, _)| id);
        self.whole.keys().chain(cut).collect()
    }
}

/// `path` with its middle left out when it is too long for a one-line message.
fn shorten(path: String) -> String {
    const KEEP: usize = 60;
    let chars: Vec<char> = path.chars().collect();
    if chars.len() <= 3 * KEEP {
        return path;
    }
    let head: String = chars[..KEEP].iter().collect();
    let tail: String = chars[chars.len() - KEEP..].iter().collect();
    format!("{head}...{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_are_shortened_in_the_middle() {
        assert_eq!(shorten("/a/b".into()), "/a/b");
        let long = "/d".repeat(2000) + "/end";
        let short = shorten(long.clone());
        assert_eq!(short.len(), 123);
        assert!(short.starts_with("/d/d/") && short.ends_with("/d/end"));
        let wide = "é".repeat(500);
        assert_eq!(shorten(wide).chars().count(), 123);
    }

    #[test]
    fn descend_refuses_past_the_limit_only() {
        assert_eq!(descend(MAX_DEPTH - 1, String::new, Ok).unwrap(), MAX_DEPTH);
        let e = descend(MAX_DEPTH, || "/x".into(), Ok).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/x: directories nest deeper than 2048 levels"
        );
    }
}
