//! Channels: the closed set of ways sirena reaches people, and the adapters that put a
//! rendered message on each platform.
//!
//! A delivery names its [`ChannelKind`] and an [`Address`] parsed once for that kind;
//! the dispatcher hands a [`Outgoing`] message to the adapter of that kind through the
//! one [`Channel`] trait. Every platform answer is classified into [`SendError`] here,
//! at the edge, so the dispatcher decides retries and deactivation without knowing any
//! platform's wire format.
//!
//! **Architecture invariant:** an adapter never decides what to do about a failure; it
//! only says what happened, as a variant. A 429 is [`SendError::RateLimited`] with its
//! scope and `retry_after`, never a string to match.

pub mod phone;
pub mod sms;
pub mod telegram;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::secret::mask;

/// Every channel sirena can deliver through. Stored as [`ChannelKind::code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// A resident's private chat with the bot.
    TelegramChat,
    /// A region's public Telegram channel, where the bot is an admin: one post reaches
    /// every reader.
    TelegramChannel,
    /// A phone number, through an SMS gateway.
    Sms,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 3] = [ChannelKind::TelegramChat, ChannelKind::TelegramChannel, ChannelKind::Sms];

    /// The name used in the store's subscriber rows, logs and config.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::TelegramChat => "telegram",
            ChannelKind::TelegramChannel => "telegram_channel",
            ChannelKind::Sms => "sms",
        }
    }

    pub fn parse(s: &str) -> Option<ChannelKind> {
        ChannelKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The small integer a delivery row stores (rows are many; names are long).
    pub fn code(self) -> i64 {
        match self {
            ChannelKind::TelegramChat => 0,
            ChannelKind::TelegramChannel => 1,
            ChannelKind::Sms => 2,
        }
    }

    pub fn from_code(code: i64) -> Option<ChannelKind> {
        ChannelKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// How messages for this channel are rendered.
    pub fn format(self) -> crate::messages::Format {
        use crate::messages::Format;
        match self {
            ChannelKind::TelegramChat => Format::TelegramHtml,
            ChannelKind::TelegramChannel => Format::ChannelPost,
            ChannelKind::Sms => Format::Sms,
        }
    }

    /// A person can be told they are gone (blocked the bot, number dead); a region
    /// channel is the operator's, and its failures are the operator's to fix.
    pub fn is_personal(self) -> bool {
        !matches!(self, ChannelKind::TelegramChannel)
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Telegram channel, by numeric id (`-100…`) or public username.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ChannelRef {
    Id(i64),
    /// Without the leading `@`.
    Username(String),
}

/// Where a message goes, parsed once from the stored text for its kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    TelegramChat(i64),
    TelegramChannel(ChannelRef),
    /// E.164: `+` and 8–15 digits.
    Phone(String),
}

/// An address that does not parse. Its message masks what looks like a phone number
/// (it reaches logs); `text` keeps the input for whoever must show it to its owner.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{}` is not a {kind} address: {why}", self.shown())]
pub struct BadAddress {
    pub kind: ChannelKind,
    pub text: String,
    pub why: String,
}

impl BadAddress {
    /// The message with the address as it was typed, for the operator who typed it
    /// (a command's own output); [`fmt::Display`] masks it for logs.
    pub fn as_typed(&self) -> String {
        format!("`{}` is not a {} address: {}", self.text, self.kind, self.why)
    }

    fn shown(&self) -> String {
        match self.kind {
            ChannelKind::Sms | ChannelKind::TelegramChat => mask(&self.text),
            ChannelKind::TelegramChannel => self.text.clone(),
        }
    }
}

impl Address {
    pub fn parse(kind: ChannelKind, text: &str) -> Result<Address, BadAddress> {
        let t = text.trim();
        let bad = |why: &str| BadAddress { kind, text: text.to_owned(), why: why.to_owned() };
        match kind {
            ChannelKind::TelegramChat => {
                // Rust's integer parsing takes a leading `+`; a chat id never has one,
                // and a phone number must not pass for a chat.
                let digits = t.strip_prefix('-').unwrap_or(t);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("not a chat id"));
                }
                t.parse().map(Address::TelegramChat).map_err(|_| bad("not a chat id"))
            }
            ChannelKind::TelegramChannel => {
                if let Some(name) = t.strip_prefix('@') {
                    // Telegram usernames: 5–32 characters of a-z, 0-9 and `_`.
                    let ok = (5..=32).contains(&name.len())
                        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                        && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic());
                    if ok {
                        Ok(Address::TelegramChannel(ChannelRef::Username(name.to_owned())))
                    } else {
                        Err(bad("not a @username"))
                    }
                } else {
                    match t.parse::<i64>() {
                        Ok(id) if id < 0 => Ok(Address::TelegramChannel(ChannelRef::Id(id))),
                        _ => Err(bad("a channel is `@username` or a negative id like -1001234567890")),
                    }
                }
            }
            // Normalised here, so a stored number is always E.164 and one person is one
            // subscriber however their number was written.
            ChannelKind::Sms => phone::normalize(t).map(Address::Phone).map_err(|e| bad(&e.to_string())),
        }
    }

    /// The E.164 number of an SMS address.
    pub fn phone(&self) -> Option<&str> {
        match self {
            Address::Phone(p) => Some(p),
            _ => None,
        }
    }

    pub fn kind(&self) -> ChannelKind {
        match self {
            Address::TelegramChat(_) => ChannelKind::TelegramChat,
            Address::TelegramChannel(_) => ChannelKind::TelegramChannel,
            Address::Phone(_) => ChannelKind::Sms,
        }
    }

    /// For logs: a phone number shows its country and operator code and its last four
    /// digits ([`phone::mask`]), a chat id its last three characters; a public channel
    /// name is not personal data.
    pub fn masked(&self) -> String {
        match self {
            Address::TelegramChannel(ChannelRef::Username(_)) => self.to_string(),
            Address::Phone(p) => phone::mask(p),
            other => mask(&other.to_string()),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::TelegramChat(id) | Address::TelegramChannel(ChannelRef::Id(id)) => write!(f, "{id}"),
            Address::TelegramChannel(ChannelRef::Username(name)) => write!(f, "@{name}"),
            Address::Phone(p) => f.write_str(p),
        }
    }
}

/// One message ready for the wire.
#[derive(Clone, Copy, Debug)]
pub struct Outgoing<'a> {
    pub to: &'a Address,
    pub text: &'a str,
    /// Delivered without sound (all-clears, updates).
    pub silent: bool,
    /// May use the platform's paid high-throughput mode (Telegram's
    /// `allow_paid_broadcast`); only for the classes the operator enabled.
    pub paid: bool,
    /// Buttons under the message (Telegram only; other channels ignore them).
    pub keyboard: &'a Keyboard,
    /// The same for every attempt at this one message, different for any other: a
    /// gateway that deduplicates retries (TurboSMS `sequence_id`) is given it. Empty
    /// for the bot's replies.
    pub key: &'a str,
}

/// Buttons a Telegram message carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Keyboard {
    /// None: the chat keeps whatever reply keyboard it had.
    #[default]
    None,
    /// Inline buttons under the message, in rows.
    Inline(Vec<Vec<Button>>),
    /// A reply keyboard in place of the phone's keyboard, in rows, shown once
    /// (`one_time_keyboard`) and fitted to its buttons.
    Reply(Vec<Vec<ReplyButton>>),
    /// Takes away a reply keyboard shown before.
    Remove,
}

impl Keyboard {
    /// One inline button per row: a list to choose from.
    pub fn column(buttons: impl IntoIterator<Item = Button>) -> Keyboard {
        Keyboard::Inline(buttons.into_iter().map(|b| vec![b]).collect())
    }
}

/// An inline button: its label and the callback data it sends back (at most 64 bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Button {
    pub label: String,
    pub data: String,
}

impl Button {
    pub fn new(label: impl Into<String>, data: impl Into<String>) -> Button {
        Button { label: label.into(), data: data.into() }
    }
}

/// A reply-keyboard button: plain text it sends, or a request for the person's
/// location or own contact card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyButton {
    Text(String),
    Location(String),
    Contact(String),
}

/// The platform accepted the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// The platform's id of the message, for the record.
    pub platform_id: String,
}

/// Which limit a 429 says was hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitScope {
    /// Only this recipient must wait.
    Recipient,
    /// Every send on this channel must wait (the whole bot, the whole gateway account).
    Channel,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("rate limited ({scope:?}), retry after {retry_after:?}")]
    RateLimited { scope: LimitScope, retry_after: Duration },
    /// The recipient blocked us, no longer exists or cannot be found: for a person,
    /// stop writing to them; for a region channel, an operator must fix it.
    #[error("recipient gone: {0}")]
    RecipientGone(String),
    /// The chat moved to a new address (a group upgraded to a supergroup).
    #[error("chat migrated to {0}")]
    Migrated(String),
    /// Network trouble, timeouts, 5xx, an unreadable answer: worth retrying.
    #[error("transient: {0}")]
    Transient(String),
    /// The platform rejected the message itself; retrying would not help.
    #[error("rejected: {0}")]
    Rejected(String),
}

/// One platform adapter. Implementations are cheap to clone behind an `Arc` and safe
/// to call concurrently; each call is one request with its own timeout.
#[async_trait::async_trait]
pub trait Channel: Send + Sync {
    async fn send(&self, message: Outgoing<'_>) -> Result<Sent, SendError>;

    /// How many messages of one text the dispatcher may hand over at once
    /// ([`Channel::send_batch`]); 1 where every message is its own request.
    fn max_batch(&self) -> usize {
        1
    }

    /// Sends one text to several recipients, in as few requests as the platform
    /// allows; one result per message, in order. Each message keeps its own key.
    async fn send_batch(&self, messages: &[Outgoing<'_>]) -> Vec<Result<Sent, SendError>> {
        let mut out = Vec::with_capacity(messages.len());
        for m in messages {
            out.push(self.send(*m).await);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_once_per_kind() {
        let ok = [
            (ChannelKind::TelegramChat, "12345", "12345"),
            (ChannelKind::TelegramChannel, "@kharkiv_sirena", "@kharkiv_sirena"),
            (ChannelKind::TelegramChannel, "-1001234567890", "-1001234567890"),
            (ChannelKind::Sms, " +380501234567 ", "+380501234567"),
            (ChannelKind::Sms, "380501234567", "+380501234567"),
            (ChannelKind::Sms, "0501234567", "+380501234567"),
            (ChannelKind::Sms, "+380 (50) 123-45-67", "+380501234567"),
            (ChannelKind::Sms, "+48512345678", "+48512345678"),
        ];
        for (kind, text, shown) in ok {
            let a = Address::parse(kind, text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(a.kind(), kind);
            assert_eq!(a.to_string(), shown);
        }
        let bad = [
            (ChannelKind::TelegramChat, "+380501234567"),
            (ChannelKind::TelegramChannel, "12345"),
            (ChannelKind::TelegramChannel, "@ab"),
            (ChannelKind::Sms, "38050123456"),
            (ChannelKind::Sms, "+38050abc"),
            (ChannelKind::Sms, "501234567"),
        ];
        for (kind, text) in bad {
            assert!(Address::parse(kind, text).is_err(), "{kind} {text}");
        }
        assert_eq!(Address::parse(ChannelKind::Sms, "+380501234567").expect("phone").masked(), "+38050***4567");
        assert_eq!(Address::parse(ChannelKind::TelegramChat, "123456789").expect("chat").masked(), "******789");
        let bad = Address::parse(ChannelKind::Sms, "+38050123456").expect_err("short");
        assert_eq!(bad.why, "11 digits; a Ukrainian number has 12: 380 and 9 more");
    }

    #[test]
    fn kinds_round_trip_through_codes_and_names() {
        for k in ChannelKind::ALL {
            assert_eq!(ChannelKind::from_code(k.code()), Some(k));
            assert_eq!(ChannelKind::parse(k.as_str()), Some(k));
        }
    }
}
