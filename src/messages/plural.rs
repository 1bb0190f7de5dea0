//! Counts in the operators' English CLI output: "1 evacuation order", "2 evacuation
//! orders". One helper for every count the CLI prints, so none says "1 orders".
//! (Residents and operator notices get their counts through the catalogues' Fluent
//! plural forms instead: [`crate::messages::Composer::counted`].)

/// `n` and the noun in English's form for it: `one` for exactly 1, `other` otherwise
/// (0 too: "0 regions").
pub fn count(n: usize, one: &str, other: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { other })
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn one_is_singular_and_every_other_number_plural() {
        assert_eq!(count(1, "evacuation order", "evacuation orders"), "1 evacuation order");
        assert_eq!(count(2, "evacuation order", "evacuation orders"), "2 evacuation orders");
        assert_eq!(count(0, "new subscriber", "new subscribers"), "0 new subscribers");
        assert_eq!(count(21, "region", "regions"), "21 regions");
    }
}
