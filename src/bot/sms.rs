//! SMS fallback opt-in: a resident shares their own contact card and gets an SMS
//! subscriber for the same places, linked to the chat ([`Store::link_sms`]) so `/sms
//! off` (or its button) removes it. A card that is not the sender's own is refused and
//! nothing is stored. Phones appear in logs only masked.
//!
//! The SMS subscriber gets the chat's places as they are at the opt-in; `/sms` again
//! copies places added since.

use super::conversation::{Conversation, Reply};
use crate::channels::phone::{mask, normalize};
use crate::channels::{Button, ChannelKind, Keyboard, ReplyButton};
use crate::matcher::IndexDelta;
use crate::messages::{Composer, escape};
use crate::store::{StoreError, Subscriber};

/// Callback data of the "turn SMS off" button (under the bot's `help:` prefix).
pub(super) const OFF_BUTTON: &str = "help:sms-off";

/// `/sms` and `/sms off`; `None` for any other text.
pub(super) async fn on_text(
    conv: &Conversation,
    sub: &Subscriber,
    text: &str,
    composer: &Composer,
) -> Result<Option<Vec<Reply>>, StoreError> {
    let mut words = text.split_whitespace();
    let command = words.next().unwrap_or_default();
    let command = command.split('@').next().unwrap_or_default();
    if !command.eq_ignore_ascii_case("/sms") {
        return Ok(None);
    }
    let t = |id: &str| escape(&composer.text(sub.lang, id, &[], id));
    match words.next() {
        Some(w) if w.eq_ignore_ascii_case("off") => off(conv, sub, composer).await.map(Some),
        _ => {
            let keyboard = Keyboard::Reply(vec![vec![ReplyButton::Contact(t("sms-share-button"))]]);
            Ok(Some(vec![Reply { text: t("sms-offer"), keyboard }]))
        }
    }
}

/// A contact card shared outside a help request.
pub(super) async fn on_contact(
    conv: &Conversation,
    sub: &Subscriber,
    phone: &str,
    own: bool,
    composer: &Composer,
) -> Result<Vec<Reply>, StoreError> {
    let lang = sub.lang;
    let t = |id: &str, args: &[(&str, &str)]| escape(&composer.text(lang, id, args, id));
    if !own {
        return Ok(vec![Reply { text: t("sms-not-own", &[]), keyboard: Keyboard::Remove }]);
    }
    let Ok(phone) = normalize(phone) else {
        return Ok(vec![Reply { text: t("sms-bad-phone", &[]), keyboard: Keyboard::Remove }]);
    };
    let places = conv.store.places(sub.id).await?;
    if places.is_empty() {
        return Ok(vec![Reply { text: t("sms-no-places", &[]), keyboard: Keyboard::Remove }]);
    }
    let up = conv.store.upsert_subscriber(ChannelKind::Sms, &phone, lang).await?;
    let sms = up.subscriber.id;
    if up.reactivated {
        conv.delta(IndexDelta::Reactivated(sms));
    }
    let mut added = Vec::new();
    for place in &places {
        if conv.store.add_place(sms, place).await? {
            added.push(place.clone());
        }
    }
    if !added.is_empty() {
        conv.delta(IndexDelta::Added { subscriber: sms, places: added });
    }
    conv.store.link_sms(sub.id, sms).await?;
    tracing::info!(phone = %mask(&phone), places = places.len(), "SMS fallback on");
    let count = places.len().to_string();
    let text = t("sms-on", &[("phone", &mask(&phone)), ("count", &count)]);
    let off = Button::new(t("sms-off-button", &[]), OFF_BUTTON);
    // The reply keyboard with the contact button goes away with the first reply.
    Ok(vec![
        Reply { text: t("sms-on-short", &[]), keyboard: Keyboard::Remove },
        Reply { text, keyboard: Keyboard::column([off]) },
    ])
}

/// `/sms off` or its button: the linked SMS subscriber loses its places and stops.
pub(super) async fn off(conv: &Conversation, sub: &Subscriber, composer: &Composer) -> Result<Vec<Reply>, StoreError> {
    let t = |id: &str| escape(&composer.text(sub.lang, id, &[], id));
    let Some(sms) = conv.store.unlink_sms(sub.id).await? else {
        return Ok(vec![Reply::text(t("sms-not-on"))]);
    };
    let removed = conv.store.remove_places(sms, None).await?;
    conv.delta(IndexDelta::Removed { subscriber: sms, places: removed });
    conv.store.deactivate(sms, "SMS fallback turned off by the resident").await?;
    Ok(vec![Reply::text(t("sms-off"))])
}
