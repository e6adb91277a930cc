//! Postings: which messages of a chat hold a term. A list is sorted by message id and stored as
//! varint deltas (the first id zig-zag encoded). Message ids of a chat grow with time, so deltas
//! are small: a term in one message of a hundred costs about a byte a message. How often a term
//! occurs in a message is not stored: ranking reads the few messages it shows anyway.

use crate::store::MessageId;
use integer_encoding::VarInt;

/// Appends `ids` (sorted, distinct) to `out`.
pub fn encode(ids: &[MessageId], out: &mut Vec<u8>) {
    let mut previous: Option<i64> = None;
    for &id in ids {
        let id = id as i64;
        let value = match previous {
            None => ((id << 1) ^ (id >> 63)) as u64,
            Some(previous) => (id - previous) as u64,
        };
        let mut buf = [0u8; 10];
        let len = value.encode_var(&mut buf);
        out.extend_from_slice(&buf[..len]);
        previous = Some(id);
    }
}

/// Why a list does not decode.
#[derive(Debug, thiserror::Error)]
#[error("a postings list is cut short or malformed")]
pub struct Malformed;

/// Decodes `count` ids from `bytes` (exactly) into `out`.
pub fn decode(bytes: &[u8], count: usize, out: &mut Vec<MessageId>) -> Result<(), Malformed> {
    let mut at = 0;
    let mut previous: Option<i64> = None;
    for _ in 0..count {
        let (value, read) = u64::decode_var(bytes.get(at..).ok_or(Malformed)?).ok_or(Malformed)?;
        at += read;
        let id = match previous {
            None => ((value >> 1) as i64) ^ -((value & 1) as i64),
            Some(previous) => previous
                .checked_add(i64::try_from(value).map_err(|_| Malformed)?)
                .ok_or(Malformed)?,
        };
        let id = MessageId::try_from(id).map_err(|_| Malformed)?;
        out.push(id);
        previous = Some(id as i64);
    }
    if at == bytes.len() {
        Ok(())
    } else {
        Err(Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn lists_round_trip(mut ids in proptest::collection::vec(any::<i32>(), 0..200)) {
            ids.sort_unstable();
            ids.dedup();
            let mut bytes = Vec::new();
            encode(&ids, &mut bytes);
            let mut back = Vec::new();
            decode(&bytes, ids.len(), &mut back).unwrap();
            prop_assert_eq!(back, ids);
        }

        #[test]
        fn garbage_is_an_error_or_a_list_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64), count in 0usize..40) {
            let _ = decode(&bytes, count, &mut Vec::new());
        }
    }

    #[test]
    fn close_ids_cost_a_byte() {
        let ids: Vec<i32> = (0..1000).map(|i| 1_000_000 + i * 100).collect();
        let mut bytes = Vec::new();
        encode(&ids, &mut bytes);
        assert!(bytes.len() <= 1_003, "{} bytes", bytes.len());
    }
}
