//! The station's dispatch figures, as the stations measure themselves: response times (order →
//! arrival; median and p90, nearest rank) and the shares of calls closed at all and closed by
//! the first crew sent.

/// Median and p90 of `ms` (nearest rank), None when empty.
pub fn median_p90(ms: &[i64]) -> Option<(i64, i64)> {
    if ms.is_empty() {
        return None;
    }
    let mut v = ms.to_vec();
    v.sort_unstable();
    let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Some((rank(0.5), rank(0.9)))
}

/// `part` of `whole` as a share 0–1 (None of nothing).
pub fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(median_p90(&[]), None);
        assert_eq!(median_p90(&[7]), Some((7, 7)));
        // 1..=10: the median is the 5th, p90 the 9th.
        let v: Vec<i64> = (1..=10).rev().collect();
        assert_eq!(median_p90(&v), Some((5, 9)));
        assert_eq!(median_p90(&[3, 1]), Some((1, 3)));
        assert_eq!(share(8, 10), Some(0.8));
        assert_eq!(share(0, 0), None);
    }
}
