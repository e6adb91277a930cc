//! What one query word looks for in the index.

/// What one query word looks for among terms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Want {
    /// Terms looked for as they are (the stems of a word's forms).
    pub terms: Vec<String>,
    /// Starts of terms: any term that starts so matches (`word*`, and a long word's own stem,
    /// which meets the words made from it: "футбол" finds "футбольний").
    pub starts: Vec<String>,
}

impl Want {
    /// Whether `term` is one it looks for.
    pub fn holds(&self, term: &str) -> bool {
        self.terms.iter().any(|t| t == term)
            || self.starts.iter().any(|s| term.starts_with(s.as_str()))
    }

    /// Everything it looks for, each with whether it is a start.
    pub fn looked_for(&self) -> impl Iterator<Item = (&str, bool)> {
        self.terms
            .iter()
            .map(|t| (t.as_str(), false))
            .chain(self.starts.iter().map(|s| (s.as_str(), true)))
    }
}
