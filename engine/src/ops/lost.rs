//! What is lost below each tree of a snapshot, as `check` and `repair
//! snapshots` find it: shared between every path that reaches a tree rather
//! than copied per path, so that a tree reached at very many paths costs its
//! size once, and listed path by path only as far as a budget allows.

use std::sync::Arc;

/// What is lost below one tree, in walk order, and how many paths that is
/// (saturating).
#[derive(Default)]
pub(crate) struct Below {
    pieces: Vec<Piece>,
    paths: u64,
}

enum Piece {
    /// The entry with this name (empty for the tree itself) is lost.
    At(String, String),
    /// What is lost below the subdirectory with this name.
    Into(String, Arc<Below>),
}

impl Below {
    /// Records that the entry `name` (empty for the tree itself) is lost.
    pub(crate) fn at(&mut self, name: &str, cause: String) {
        self.pieces.push(Piece::At(name.to_string(), cause));
        self.paths = self.paths.saturating_add(1);
    }

    /// Records what is lost below the subdirectory `name`.
    pub(crate) fn below(&mut self, name: &str, lost: Arc<Below>) {
        if lost.paths > 0 {
            self.paths = self.paths.saturating_add(lost.paths);
            self.pieces.push(Piece::Into(name.to_string(), lost));
        }
    }

    /// The number of paths lost (saturating).
    pub(crate) fn paths(&self) -> u64 {
        self.paths
    }

    /// Calls `out` with each lost path (relative, empty for the tree itself)
    /// and its cause, in walk order, while `budget` (bytes of paths and
    /// causes) lasts; returns how many paths it gave.
    pub(crate) fn list(&self, budget: &mut usize, out: &mut dyn FnMut(String, &str)) -> u64 {
        let join = |prefix: &str, name: &str| match (prefix.is_empty(), name.is_empty()) {
            (_, true) => prefix.to_string(),
            (true, false) => name.to_string(),
            (false, false) => format!("{prefix}/{name}"),
        };
        let mut listed = 0;
        // Each level: the path of its tree, what is lost, and the next piece.
        let mut stack: Vec<(String, &Below, usize)> = vec![(String::new(), self, 0)];
        while let Some((prefix, below, next)) = stack.last_mut() {
            let Some(piece) = below.pieces.get(*next) else {
                stack.pop();
                continue;
            };
            *next += 1;
            let deeper = match piece {
                Piece::At(name, cause) => {
                    let path = join(prefix, name);
                    let cost = 1 + path.len() + cause.len();
                    if cost > *budget {
                        return listed;
                    }
                    *budget -= cost;
                    listed += 1;
                    out(path, cause);
                    None
                }
                Piece::Into(name, sub) => Some((join(prefix, name), &**sub, 0)),
            };
            stack.extend(deeper);
        }
        listed
    }
}

impl Drop for Below {
    /// Takes nested listings apart one by one: dropping a chain of 2,049
    /// levels recursively could overflow a small stack.
    fn drop(&mut self) {
        let mut pieces = std::mem::take(&mut self.pieces);
        while let Some(piece) = pieces.pop() {
            if let Piece::Into(_, sub) = piece {
                if let Ok(mut sub) = Arc::try_unwrap(sub) {
                    pieces.append(&mut sub.pieces);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_listing_is_listed_at_each_path_within_the_budget() {
        let mut leaf = Below::default();
        leaf.at("f", "gone".into());
        let leaf = Arc::new(leaf);
        let mut root = Below::default();
        root.below("a", leaf.clone());
        root.below("b", leaf);
        root.below("empty", Arc::new(Below::default()));
        root.at("", "root".into());
        assert_eq!(root.paths(), 3);
        let mut seen = Vec::new();
        let mut all = usize::MAX;
        let listed = root.list(&mut all, &mut |p, c| seen.push((p, c.to_string())));
        assert_eq!(listed, 3);
        let expected = [("a/f", "gone"), ("b/f", "gone"), ("", "root")];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(p, c)| (p.to_string(), c.to_string()))
            .collect();
        assert_eq!(seen, expected);
        // Room for the first path only (1 + 3 + 4 bytes).
        let mut budget = 8;
        assert_eq!(root.list(&mut budget, &mut |_, _| {}), 1);
        assert_eq!(budget, 0);
    }

    #[test]
    fn a_deep_chain_drops_without_recursion() {
        let mut lost = Arc::new(Below::default());
        Arc::get_mut(&mut lost).unwrap().at("f", "gone".into());
        for _ in 0..100_000 {
            let mut up = Below::default();
            up.below("d", lost);
            lost = Arc::new(up);
        }
        assert_eq!(lost.paths(), 1);
        std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || drop(lost))
            .unwrap()
            .join()
            .unwrap();
    }
}
