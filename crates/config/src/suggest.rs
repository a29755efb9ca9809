//! "Did you mean ...?" for misspelt keys, kinds and names.

/// The candidate nearest to `name`, if it is plausibly a typo of it: a small
/// edit distance, or a high Jaro-Winkler similarity (which forgives the
/// extra letters of `retires` for `retry`).
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::jaro_winkler(name, c),
                strsim::damerau_levenshtein(name, c),
                c,
            )
        })
        .filter(|(similarity, distance, _)| {
            *similarity >= 0.85 || *distance <= 2.min(name.len() / 2)
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, _, c)| c)
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn finds_plausible_typos_only() {
        assert_eq!(
            closest("retires", ["url", "retry", "timeout"]),
            Some("retry")
        );
        assert_eq!(
            closest("timeuot", ["url", "retry", "timeout"]),
            Some("timeout")
        );
        assert_eq!(closest("crm", ["erp", "payments"]), None);
        assert_eq!(closest("zzz", ["url", "timeout"]), None);
        assert_eq!(closest("payment", ["erp", "payments"]), Some("payments"));
    }
}
