//! The audit log's hash chain (SPEC section 16): every sealed entry carries a sequence
//! number and the hash of the entry before it, so that a changed, removed or reordered
//! entry breaks the chain.
//!
//! **Canonical encoding** of an entry, hashed with SHA-256 ([`entry_hash`]):
//!
//! ```text
//! "twostep audit v1"                      16 bytes, the format's name
//! seq                                     8 bytes, big-endian, from 1
//! previous hash                           32 bytes (all zero before the first entry)
//! at                                      8 bytes, big-endian, Unix milliseconds
//! event, actor, subject, client_ip, detail
//!     each: 1 byte 0 (absent) or 1 (present), then for a present value its UTF-8
//!     length as 4 bytes big-endian and its bytes (event and detail are always present)
//! ```
//!
//! Every field has a length or a fixed size, so two different entries never encode the
//! same. Pure: no I/O; the store seals entries in one ordering point of the database and
//! `twostep audit verify` walks them with [`ChainCheck`].

use sha2::{Digest, Sha256};

use super::AuditEntry;

/// The previous hash of the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

const FORMAT: &[u8; 16] = b"twostep audit v1";

/// An entry's place in the chain as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainLink {
    pub seq: i64,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

fn push_text(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        None => out.push(0),
        Some(text) => {
            out.push(1);
            let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(text.as_bytes());
        }
    }
}

/// The canonical encoding of `entry` at `seq` after `prev` (see the module's text).
pub fn canonical(entry: &AuditEntry, seq: i64, prev: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + entry.detail.len());
    out.extend_from_slice(FORMAT);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(prev);
    out.extend_from_slice(&entry.at.millis().to_be_bytes());
    push_text(&mut out, Some(&entry.event));
    push_text(&mut out, entry.actor.as_deref());
    push_text(&mut out, entry.subject.as_deref());
    push_text(&mut out, entry.client_ip.as_deref());
    push_text(&mut out, Some(&entry.detail));
    out
}

/// SHA-256 of [`canonical`].
pub fn entry_hash(entry: &AuditEntry, seq: i64, prev: &[u8; 32]) -> [u8; 32] {
    Sha256::digest(canonical(entry, seq, prev)).into()
}

/// Why the chain breaks at an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Break {
    /// The sequence number is not the one after the previous entry's: entries before it
    /// were removed (or it was moved).
    Gap { expected: i64 },
    /// Its previous hash is not the previous entry's hash: an entry before it was removed,
    /// replaced or reordered.
    PreviousHash,
    /// Its own hash does not match its content: the entry was changed.
    Content,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Gap { expected } => write!(
                f,
                "sequence number is not {expected}: an entry before it is missing"
            ),
            Self::PreviousHash => f.write_str(
                "previous hash does not match the entry before it: an entry was removed, replaced or reordered",
            ),
            Self::Content => f.write_str("hash does not match its content: the entry was changed"),
        }
    }
}

/// The first broken entry: its id and sequence number, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broken {
    pub id: i64,
    pub seq: i64,
    pub why: Break,
}

/// Walks sealed entries in sequence order, from the first or from a known link: each
/// [`ChainCheck::next`] checks one entry against the one before it.
#[derive(Clone, Debug)]
pub struct ChainCheck {
    expected_seq: i64,
    prev: Option<[u8; 32]>,
    checked: u64,
}

impl ChainCheck {
    /// From the first entry (sequence 1, after [`GENESIS`]).
    pub fn from_start() -> Self {
        Self {
            expected_seq: 1,
            prev: Some(GENESIS),
            checked: 0,
        }
    }

    /// From entry `seq`, trusting its stored previous hash (`twostep audit verify
    /// --from SEQ`).
    pub fn from_seq(seq: i64) -> Self {
        Self {
            expected_seq: seq,
            prev: None,
            checked: 0,
        }
    }

    /// How many entries were checked so far.
    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// Checks the next entry.
    pub fn next(&mut self, entry: &AuditEntry, link: &ChainLink) -> Result<(), Broken> {
        let broken = |why| Broken {
            id: entry.id,
            seq: link.seq,
            why,
        };
        if link.seq != self.expected_seq {
            return Err(broken(Break::Gap {
                expected: self.expected_seq,
            }));
        }
        let Ok(stored_prev) = <[u8; 32]>::try_from(link.prev_hash.as_slice()) else {
            return Err(broken(Break::PreviousHash));
        };
        if self.prev.is_some_and(|prev| prev != stored_prev) {
            return Err(broken(Break::PreviousHash));
        }
        let hash = entry_hash(entry, link.seq, &stored_prev);
        if link.hash.as_slice() != hash.as_slice() {
            return Err(broken(Break::Content));
        }
        self.prev = Some(hash);
        self.expected_seq += 1;
        self.checked += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;

    fn entry(id: i64, detail: &str) -> AuditEntry {
        AuditEntry {
            id,
            at: Timestamp::from_millis(1_800_000_000_000 + id),
            event: "signin_succeeded".to_owned(),
            actor: None,
            subject: Some("jane".to_owned()),
            client_ip: Some("192.0.2.1".to_owned()),
            detail: detail.to_owned(),
        }
    }

    fn chain(entries: &[AuditEntry]) -> Vec<ChainLink> {
        let mut prev = GENESIS;
        entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let seq = i64::try_from(i).unwrap() + 1;
                let hash = entry_hash(e, seq, &prev);
                let link = ChainLink {
                    seq,
                    prev_hash: prev.to_vec(),
                    hash: hash.to_vec(),
                };
                prev = hash;
                link
            })
            .collect()
    }

    fn check(entries: &[AuditEntry], links: &[ChainLink]) -> Result<u64, Broken> {
        let mut walk = ChainCheck::from_start();
        for (entry, link) in entries.iter().zip(links) {
            walk.next(entry, link)?;
        }
        Ok(walk.checked())
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let entries: Vec<_> = (1..=5).map(|i| entry(i, "x")).collect();
        assert_eq!(check(&entries, &chain(&entries)), Ok(5));
    }

    #[test]
    fn a_changed_entry_is_named() {
        let mut entries: Vec<_> = (1..=5).map(|i| entry(i, "x")).collect();
        let links = chain(&entries);
        entries[2].detail = "y".to_owned();
        let broken = check(&entries, &links).unwrap_err();
        assert_eq!((broken.id, broken.seq, broken.why), (3, 3, Break::Content));
        // Absent and empty are not the same.
        let mut entries: Vec<_> = (1..=2).map(|i| entry(i, "x")).collect();
        let links = chain(&entries);
        entries[1].actor = Some(String::new());
        assert_eq!(check(&entries, &links).unwrap_err().why, Break::Content);
    }

    #[test]
    fn a_removed_entry_breaks_the_next() {
        let entries: Vec<_> = (1..=5).map(|i| entry(i, "x")).collect();
        let links = chain(&entries);
        let (mut e, mut l) = (entries.clone(), links.clone());
        e.remove(2);
        l.remove(2);
        let broken = check(&e, &l).unwrap_err();
        assert_eq!(broken.id, 4);
        assert_eq!(broken.why, Break::Gap { expected: 3 });
        // Removed, and the later sequence numbers moved down: the previous hash tells.
        let mut l2 = l.clone();
        for link in &mut l2[2..] {
            link.seq -= 1;
        }
        assert_eq!(check(&e, &l2).unwrap_err().why, Break::PreviousHash);
    }

    #[test]
    fn swapped_entries_are_named() {
        let entries: Vec<_> = (1..=5).map(|i| entry(i, &format!("d{i}"))).collect();
        let links = chain(&entries);
        let mut swapped = entries.clone();
        swapped.swap(1, 3);
        let broken = check(&swapped, &links).unwrap_err();
        assert_eq!((broken.seq, broken.why), (2, Break::Content));
    }

    #[test]
    fn the_encoding_keeps_fields_apart() {
        let mut a = entry(1, "ab");
        a.subject = Some("c".to_owned());
        let mut b = entry(1, "a");
        b.subject = Some("bc".to_owned());
        assert_ne!(canonical(&a, 1, &GENESIS), canonical(&b, 1, &GENESIS));
        assert_ne!(
            entry_hash(&a, 1, &GENESIS),
            entry_hash(&a, 2, &GENESIS),
            "the sequence number is hashed"
        );
    }

    #[test]
    fn from_a_sequence_number_the_stored_previous_hash_is_trusted() {
        let entries: Vec<_> = (1..=5).map(|i| entry(i, "x")).collect();
        let links = chain(&entries);
        let mut walk = ChainCheck::from_seq(3);
        for i in 2..5 {
            walk.next(&entries[i], &links[i]).unwrap();
        }
        assert_eq!(walk.checked(), 3);
    }
}
