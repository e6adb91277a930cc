//! The candidates a catch-up ranks, chosen while the window streams by: the messages with the
//! most to say in each stretch of it, a fixed number per stretch, so that a long window costs
//! time but never memory, and a busy evening cannot crowd out the rest of the day.

use crate::store::MessageRef;

/// Stretches of a window (by message count) and candidates kept in each: at most
/// `BUCKETS * PER_BUCKET` are ranked.
const BUCKETS: usize = 48;
const PER_BUCKET: usize = 8;

/// A message that may be key, with its terms.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub message: MessageRef,
    /// Its distinct terms (stems without stop-words), sorted.
    pub terms: Vec<Box<str>>,
    /// What it promises before the ranking: how much it says, and whether it reads like a
    /// decision, a plan or news (see [`prior`]).
    pub prior: f64,
}

/// The best candidates of each stretch of a window.
pub struct Pool {
    buckets: Vec<Vec<Candidate>>,
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            buckets: vec![Vec::new(); BUCKETS],
        }
    }
}

impl Pool {
    /// Offers a candidate at `place` (0..=1 through the window): kept if its stretch has room
    /// or it promises more than the least of it.
    pub fn offer(&mut self, place: f64, candidate: Candidate) {
        let bucket = &mut self.buckets[((place * BUCKETS as f64) as usize).min(BUCKETS - 1)];
        if bucket.len() < PER_BUCKET {
            bucket.push(candidate);
            return;
        }
        let (weakest, least) = bucket
            .iter()
            .enumerate()
            .map(|(i, c)| (i, c.prior))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .expect("a full bucket");
        if candidate.prior > least {
            bucket[weakest] = candidate;
        }
    }

    /// The candidates, oldest first.
    pub fn into_candidates(self) -> Vec<Candidate> {
        let mut all: Vec<Candidate> = self.buckets.into_iter().flatten().collect();
        all.sort_by_key(|c| (c.message.time, c.message.message_id));
        all
    }
}

/// Starts of folded words that mark a decision, a plan, a change or a reminder (Ukrainian,
/// Russian, English): such a message is what someone who was away needs most.
const MARKERS: [&str; 40] = [
    "домовил",
    "вирішил",
    "вирішено",
    "підсум",
    "остаточн",
    "змінює",
    "переноси",
    "перенесл",
    "скасов",
    "увага",
    "важлив",
    "нагаду",
    "зустрічаєм",
    "збираєм",
    "рішення",
    "план",
    "отже",
    "оголош",
    "графік",
    "розклад",
    "дедлайн",
    "договорил",
    "решили",
    "итог",
    "окончательн",
    "отмен",
    "внимание",
    "важно",
    "объявлен",
    "расписан",
    "changed",
    "agreed",
    "decided",
    "decision",
    "summary",
    "final",
    "reminder",
    "cancel",
    "moved",
    "deadline",
];
/// Numbers (times, dates, sums, rooms) that add to a message's promise, at most.
const NUMBERS: usize = 4;

/// A message's promise before ranking: the log of its distinct terms (saturating: a long
/// message is not worth many short ones), more for each number (times, dates, sums) and for the
/// words of a decision or a change; `None` for a message with under two terms ("+", "ок",
/// "😂"), which is never key.
pub fn prior(text: &str, terms: usize) -> Option<f64> {
    if terms < 2 {
        return None;
    }
    let mut prior = (1.0 + terms as f64).ln();
    let numbers = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .count();
    prior += 0.15 * numbers.min(NUMBERS) as f64;
    let mut folded = String::new();
    let marked = crate::tokens::words(text).any(|word| {
        crate::tokens::fold_into(word, &mut folded);
        MARKERS.iter().any(|m| folded.starts_with(m))
    });
    if marked {
        prior += 0.6;
    }
    Some(prior)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Message;
    use std::sync::Arc;

    fn candidate(id: i32, prior: f64) -> Candidate {
        Candidate {
            message: Arc::new(Message::text_for_test(-1, id, id as i64, 1, "x")),
            terms: Vec::new(),
            prior,
        }
    }

    #[test]
    fn each_stretch_keeps_its_most_promising_and_no_more() {
        let mut pool = Pool::default();
        for id in 0..100 {
            pool.offer(0.0, candidate(id, id as f64));
        }
        pool.offer(0.999, candidate(1_000, 0.1));
        let kept: Vec<i32> = pool
            .into_candidates()
            .iter()
            .map(|c| c.message.message_id)
            .collect();
        assert_eq!(kept, [92, 93, 94, 95, 96, 97, 98, 99, 1_000]);
    }

    #[test]
    fn noise_is_never_a_candidate_and_decisions_promise_more() {
        assert_eq!(prior("ок", 1), None);
        let plain = prior("ходили вчора в кіно", 3).unwrap();
        let decided = prior("Домовились: ходимо в кіно", 3).unwrap();
        let timed = prior("ходимо в кіно о 19:00", 3).unwrap();
        assert!(
            decided > timed && timed > plain,
            "{plain} {timed} {decided}"
        );
    }
}
