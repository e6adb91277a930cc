//! Ranking a catch-up's candidates (at most a few hundred): a TextRank over their terms, whose
//! walk restarts in proportion to each message's promise, so that a message central to what
//! was talked about and saying something concrete ranks first; then conversations found by
//! reply chains and shared words, and key messages picked without repeating one another.

use super::pool::Candidate;
use crate::store::MessageId;
use rustc_hash::FxHashMap;

/// The walk's damping: how much of a message's rank comes from the messages like it.
const DAMPING: f64 = 0.85;
const ITERATIONS: usize = 30;
/// The weight of a reply link, against shared words (about 1 for two messages sharing a rare
/// word or two).
const REPLY_LINK: f64 = 1.0;
/// Candidates this alike (cosine over weighted terms) and this close in time belong to one
/// conversation.
const SAME_THREAD: f64 = 0.2;
const THREAD_GAP_SECS: i64 = 6 * 3_600;
/// A pick is worth its rank less this share of the best rank times its likeness to what was
/// already picked; this alike, it is a repeat and skipped.
const REDUNDANCY: f64 = 0.7;
const REPEAT: f64 = 0.6;

/// What ranking the candidates found.
pub struct Ranked {
    /// Each candidate's rank (the mean is 1).
    pub rank: Vec<f64>,
    /// Each candidate's conversation (an index shared by the members of one).
    pub thread: Vec<usize>,
    /// Each candidate's weighted terms, sorted by term id, with its norm.
    vectors: Vec<(Vec<(u32, f64)>, f64)>,
}

/// Ranks `candidates`: `idf` weighs a term by how rare it is in the window, `roots` gives the
/// first message of each candidate's reply chain, `replies` how many replies it drew.
pub fn rank(
    candidates: &[Candidate],
    idf: impl Fn(&str) -> f64,
    roots: &FxHashMap<MessageId, MessageId>,
    replies: &FxHashMap<MessageId, u32>,
) -> Ranked {
    let n = candidates.len();
    let mut ids: FxHashMap<&str, u32> = FxHashMap::default();
    let vectors: Vec<(Vec<(u32, f64)>, f64)> = candidates
        .iter()
        .map(|c| {
            let mut v: Vec<(u32, f64)> = c
                .terms
                .iter()
                .map(|t| {
                    let next = ids.len() as u32;
                    (*ids.entry(t).or_insert(next), idf(t))
                })
                .collect();
            v.sort_unstable_by_key(|&(t, _)| t);
            let norm = v.iter().map(|(_, w)| w * w).sum::<f64>().sqrt().max(1e-9);
            (v, norm)
        })
        .collect();
    let root = |i: usize| {
        let id = candidates[i].message.message_id;
        roots.get(&id).copied().unwrap_or(id)
    };
    // TextRank's edge: the weights of shared terms over the sum of the log lengths.
    let mut edges: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
    for i in 0..n {
        for j in i + 1..n {
            let (shared, _) = overlap(&vectors[i].0, &vectors[j].0);
            let mut w = shared
                / ((1.0 + vectors[i].0.len() as f64).ln() + (1.0 + vectors[j].0.len() as f64).ln())
                    .max(1e-9);
            if root(i) == root(j) {
                w += REPLY_LINK;
            }
            if w > 0.0 {
                edges[i].push((j, w));
                edges[j].push((i, w));
            }
        }
    }
    let restart: Vec<f64> = {
        let raw: Vec<f64> = candidates
            .iter()
            .map(|c| {
                let drew = replies.get(&c.message.message_id).copied().unwrap_or(0);
                c.prior + 0.3 * (1.0 + drew as f64).ln()
            })
            .collect();
        let sum: f64 = raw.iter().sum::<f64>().max(1e-9);
        raw.into_iter().map(|r| r / sum).collect()
    };
    let out_weight: Vec<f64> = edges
        .iter()
        .map(|e| e.iter().map(|(_, w)| w).sum())
        .collect();
    let mut rank = restart.clone();
    for _ in 0..ITERATIONS {
        let mut next: Vec<f64> = restart.iter().map(|r| (1.0 - DAMPING) * r).collect();
        let mut dangling = 0.0;
        for i in 0..n {
            if out_weight[i] == 0.0 {
                dangling += rank[i];
                continue;
            }
            for &(j, w) in &edges[i] {
                next[j] += DAMPING * rank[i] * w / out_weight[i];
            }
        }
        for (x, r) in next.iter_mut().zip(&restart) {
            *x += DAMPING * dangling * r;
        }
        rank = next;
    }
    let rank: Vec<f64> = rank.into_iter().map(|r| r * n as f64).collect();

    // Conversations: union of reply chains and of alike messages close in time.
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for i in 0..n {
        for &(j, _) in &edges[i] {
            if j < i {
                continue;
            }
            let close =
                (candidates[j].message.time - candidates[i].message.time).abs() <= THREAD_GAP_SECS;
            let together =
                root(i) == root(j) || close && cosine(&vectors[i], &vectors[j]) >= SAME_THREAD;
            if together {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let thread = (0..n).map(|i| find(&mut parent, i)).collect();
    Ranked {
        rank,
        thread,
        vectors,
    }
}

impl Ranked {
    /// Up to `k` candidates, best first, each worth its rank less its likeness to those picked
    /// before it (maximal marginal relevance); near-repeats of a pick are never picked.
    pub fn pick(&self, k: usize) -> Vec<usize> {
        let best = self.rank.iter().copied().fold(0.0, f64::max);
        let mut picked: Vec<usize> = Vec::new();
        let mut likeness = vec![0.0f64; self.rank.len()];
        while picked.len() < k {
            let next = (0..self.rank.len())
                .filter(|i| !picked.contains(i) && likeness[*i] < REPEAT)
                .map(|i| (i, self.rank[i] - REDUNDANCY * best * likeness[i]))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            let Some((i, _)) = next else { break };
            picked.push(i);
            for (j, like) in likeness.iter_mut().enumerate() {
                *like = like.max(cosine(&self.vectors[i], &self.vectors[j]));
            }
        }
        picked
    }
}

/// The summed weights of the terms two sorted vectors share, and their dot product.
fn overlap(a: &[(u32, f64)], b: &[(u32, f64)]) -> (f64, f64) {
    let (mut i, mut j) = (0, 0);
    let (mut shared, mut dot) = (0.0, 0.0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                shared += a[i].1;
                dot += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    (shared, dot)
}

fn cosine(a: &(Vec<(u32, f64)>, f64), b: &(Vec<(u32, f64)>, f64)) -> f64 {
    overlap(&a.0, &b.0).1 / (a.1 * b.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Message;
    use std::sync::Arc;

    fn candidate(id: i32, minute: i64, terms: &[&str], prior: f64) -> Candidate {
        Candidate {
            message: Arc::new(Message::text_for_test(-1, id, minute * 60, 1, "x")),
            terms: terms.iter().map(|t| Box::from(*t)).collect(),
            prior,
        }
    }

    #[test]
    fn central_messages_rank_first_conversations_join_and_picks_do_not_repeat() {
        let candidates = [
            candidate(1, 0, &["карпат", "поїзд", "квитк"], 1.0),
            candidate(2, 5, &["карпат", "поїзд", "вагон", "квитк"], 1.5),
            candidate(3, 6, &["карпат", "поїзд", "квитк"], 1.0),
            candidate(4, 10, &["футбол", "динам"], 1.0),
            candidate(5, 900, &["намет", "газ"], 1.0),
        ];
        let ranked = rank(
            &candidates,
            |_| 1.0,
            &FxHashMap::default(),
            &FxHashMap::default(),
        );
        let best = (0..5).max_by(|&a, &b| ranked.rank[a].total_cmp(&ranked.rank[b]));
        assert_eq!(best, Some(1), "{:?}", ranked.rank);
        assert_eq!(ranked.thread[0], ranked.thread[2]);
        assert_ne!(ranked.thread[0], ranked.thread[3]);
        assert_ne!(ranked.thread[3], ranked.thread[4]);
        let picks = ranked.pick(3);
        assert_eq!(picks[0], 1);
        assert!(!picks.contains(&2) && !picks.contains(&0), "{picks:?}");
    }

    #[test]
    fn a_reply_chain_is_one_conversation() {
        let candidates = [
            candidate(1, 0, &["газ"], 1.0),
            candidate(2, 1, &["котел"], 1.0),
        ];
        let roots = FxHashMap::from_iter([(2, 1)]);
        let ranked = rank(&candidates, |_| 1.0, &roots, &FxHashMap::default());
        assert_eq!(ranked.thread[0], ranked.thread[1]);
    }
}
