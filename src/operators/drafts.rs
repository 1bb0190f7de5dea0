//! The two-person rule for broadcasts, as pure decisions over a book of drafts.
//!
//! A draft is created by one operator and sent only when a **different** operator
//! approves it; either may reject it (the author withdraws it). A decided draft leaves
//! the book, so it cannot be approved twice. The book is saved in the store's small
//! state between decisions (`Operators`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::regions::RegionId;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub id: u64,
    /// The author's Telegram user id.
    pub by: i64,
    pub place: RegionId,
    pub text: String,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drafts {
    /// The last number given; numbers are never reused.
    last: u64,
    open: BTreeMap<u64, Draft>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no open draft")]
    NoSuchDraft,
    #[error("an operator cannot approve their own draft")]
    OwnDraft,
}

impl Drafts {
    /// Files a draft and returns its number.
    pub fn create(&mut self, by: i64, place: RegionId, text: String, at: DateTime<Utc>) -> u64 {
        self.last += 1;
        let id = self.last;
        self.open.insert(id, Draft { id, by, place, text, at });
        id
    }

    /// Approval by `by`: the draft, now to be sent, unless it is `by`'s own.
    pub fn approve(&mut self, id: u64, by: i64) -> Result<Draft, Refusal> {
        match self.open.get(&id) {
            None => Err(Refusal::NoSuchDraft),
            Some(d) if d.by == by => Err(Refusal::OwnDraft),
            Some(_) => self.open.remove(&id).ok_or(Refusal::NoSuchDraft),
        }
    }

    /// Rejection (or, by its author, withdrawal): the draft, never to be sent.
    pub fn reject(&mut self, id: u64) -> Result<Draft, Refusal> {
        self.open.remove(&id).ok_or(Refusal::NoSuchDraft)
    }

    pub fn get(&self, id: u64) -> Option<&Draft> {
        self.open.get(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place() -> RegionId {
        RegionId::parse("UA63000000000041885").expect("id")
    }

    #[test]
    fn a_draft_needs_a_second_operator() {
        let mut book = Drafts::default();
        let id = book.create(1, place(), "text".into(), Utc::now());
        assert_eq!(book.approve(id, 1), Err(Refusal::OwnDraft));
        assert!(book.get(id).is_some(), "a refused approval leaves the draft open");
        let d = book.approve(id, 2).expect("another operator approves");
        assert_eq!((d.id, d.by), (id, 1));
        assert_eq!(book.approve(id, 3), Err(Refusal::NoSuchDraft), "approved once only");
        assert_eq!(book.reject(id), Err(Refusal::NoSuchDraft));
    }

    #[test]
    fn numbers_are_never_reused_and_rejected_drafts_are_gone() {
        let mut book = Drafts::default();
        let a = book.create(1, place(), "a".into(), Utc::now());
        book.reject(a).expect("withdrawn");
        let b = book.create(1, place(), "b".into(), Utc::now());
        assert_ne!(a, b);
        assert_eq!(book.approve(a, 2), Err(Refusal::NoSuchDraft));
        let json = serde_json::to_string(&book).expect("json");
        let back: Drafts = serde_json::from_str(&json).expect("back");
        assert_eq!(back, book);
    }
}
