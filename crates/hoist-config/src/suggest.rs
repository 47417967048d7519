//! "did you mean …?" for misspelt keys and values.

/// The candidate closest to `typed`, if it is close enough to be a likely typo.
///
/// Closeness is the edit distance counting a swap of two neighbours as one edit (so `nmae` is one
/// edit from `name`); a candidate qualifies within a third of its length (at least one edit).
pub(crate) fn closest<'a>(typed: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|candidate| (edit_distance(typed, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.chars().count() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut table = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in table.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in table[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (table[i - 1][j] + 1)
                .min(table[i][j - 1] + 1)
                .min(table[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(table[i - 2][j - 2] + 1);
            }
            table[i][j] = best;
        }
    }
    table[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELEASE_KEYS: &[&str] = &[
        "root",
        "keep_releases",
        "shared",
        "releases_dir",
        "current_link",
        "lock_wait",
    ];

    #[test]
    fn suggests_the_key_one_typo_away() {
        assert_eq!(closest("keep_release", RELEASE_KEYS), Some("keep_releases"));
        assert_eq!(closest("rot", RELEASE_KEYS), Some("root"));
        assert_eq!(closest("lockwait", RELEASE_KEYS), Some("lock_wait"));
    }

    #[test]
    fn counts_a_swap_as_one_typo() {
        assert_eq!(closest("nmae", &["name", "entry"]), Some("name"));
        assert_eq!(edit_distance("supervisr", "supervisor"), 1);
    }

    #[test]
    fn suggests_nothing_for_unrelated_words() {
        assert_eq!(closest("colour", RELEASE_KEYS), None);
        assert_eq!(closest("x", &["uv", "pip"]), None);
    }
}
