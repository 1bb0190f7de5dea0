//! Help to evacuate: the button under every evacuation message a Telegram chat gets,
//! and the few optional questions after a press.
//!
//! The button's data is `help:<order key>:<region>` ([`button_data`], at most 64 bytes):
//! the order's id when it is short and plain, else `#` and a stable hash of it. A press
//! starts (or, pressed again, reopens) the resident's request for that order, keyed
//! (subscriber, order) in the store, so a second press updates it. The questions are
//! asked one at a time, each skippable: how many people (`help:p:<n>`), mobility needs
//! (`help:m:<key>`), a phone to call back (a reply keyboard's contact request, or the
//! "skip" text). The request's [`HelpStep`] is the chat's state between them. The end
//! is a confirmation with the order's hotline, or the generic line.

use super::conversation::{Conversation, Reply};
use super::sms;
use crate::alerts::status::OrderInForce;
use crate::alerts::{Event, EventDetail, Transition};
use crate::channels::phone::{mask, normalize};
use crate::channels::{Button, Keyboard, ReplyButton};
use crate::messages::{Composer, Lang, escape};
use crate::regions::{RegionId, RegionTree};
use crate::store::{HelpRequest, HelpStep, StoreError, Subscriber, now_ms};

/// Callback data prefix of every button this module makes.
pub const PREFIX: &str = "help:";
/// Telegram's bound on `callback_data`.
const MAX_DATA: usize = 64;
/// An order id up to this long goes into the button as it is.
const MAX_PLAIN_KEY: usize = 24;
/// Mobility answers: the stored key and its label's message id.
const MOBILITY: [&str; 4] = ["wheelchair", "bedridden", "walks-slowly", "none"];

/// The compact, stable key of an order in a button.
pub fn order_key(order: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
    // One letter would read as a step's button (`help:p:3`), `sms-off` as that one's.
    if (2..=MAX_PLAIN_KEY).contains(&order.len()) && order != "sms-off" && order.chars().all(plain) {
        return order.to_owned();
    }
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let hash = order.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("#{hash:016x}")
}

/// `help:<order key>:<region>`; at most 64 bytes for any order id (a KATOTTG id is 19).
pub fn button_data(order: &str, region: &RegionId) -> String {
    let data = format!("{PREFIX}{}:{region}", order_key(order));
    debug_assert!(data.len() <= MAX_DATA);
    data
}

/// The "I need help to evacuate" button for a message carrying `events`, when one of
/// them starts or updates an evacuation order; `None` otherwise. For Telegram chats
/// only: the dispatch lane does not ask for SMS or region channels.
pub fn keyboard_for<'a>(events: impl IntoIterator<Item = &'a Event>, composer: &Composer, lang: Lang) -> Keyboard {
    let order = events.into_iter().find_map(|e| match &e.detail {
        EventDetail::Order { order, .. } if matches!(e.transition, Transition::Started | Transition::Updated) => {
            Some(order)
        }
        _ => None,
    });
    match order.and_then(|o| o.targets.first().map(|t| (o, t))) {
        Some((o, target)) => {
            let label = composer.text(lang, "help-button", &[], "I need help to evacuate");
            Keyboard::column([Button::new(label, button_data(&o.id, target))])
        }
        None => Keyboard::None,
    }
}

/// A press of any `help:` button.
pub(super) async fn on_button(
    conv: &Conversation,
    sub: &Subscriber,
    data: &str,
    tree: &RegionTree,
    composer: &Composer,
) -> Result<Vec<Reply>, StoreError> {
    let rest = data.strip_prefix(PREFIX).unwrap_or(data);
    if data == sms::OFF_BUTTON {
        return sms::off(conv, sub, composer).await;
    }
    let parts: Vec<&str> = rest.split(':').collect();
    match parts.as_slice() {
        ["p", n] => {
            let people = n.parse::<u32>().ok().filter(|n| (1..=99).contains(n));
            answer(conv, sub, composer, tree, |r| {
                // "Skip" keeps an earlier answer.
                r.people = people.or(r.people);
                r.step = HelpStep::Mobility;
            })
            .await
        }
        ["m", m] => {
            let mobility = MOBILITY.iter().find(|k| *k == m).map(|k| (*k).to_owned());
            answer(conv, sub, composer, tree, |r| {
                r.mobility = mobility.or(r.mobility.take());
                r.step = HelpStep::Phone;
            })
            .await
        }
        [key, region] => start(conv, sub, key, region, tree, composer).await,
        _ => Ok(vec![Reply::text(t(composer, sub.lang, "help-no-request", &[]))]),
    }
}

/// Text while the phone question is open: the "skip" button's text finishes the
/// request; anything else (and `/sms`) goes on as usual.
pub(super) async fn on_text(
    conv: &Conversation,
    sub: &Subscriber,
    text: &str,
    tree: &RegionTree,
    composer: &Composer,
) -> Result<Option<Vec<Reply>>, StoreError> {
    if let Some(r) = sms::on_text(conv, sub, text, composer).await? {
        return Ok(Some(r));
    }
    let skip = Lang::ALL.iter().any(|&l| composer.text(l, "help-skip", &[], "Skip") == text.trim());
    if !skip {
        return Ok(None);
    }
    match conv.store.help_request(sub.id, None).await? {
        Some(r) if r.step == HelpStep::Phone => {
            answer(conv, sub, composer, tree, |r| r.step = HelpStep::Done).await.map(Some)
        }
        _ => Ok(None),
    }
}

/// A contact card: the phone of an open request, else the SMS fallback opt-in.
pub(super) async fn on_contact(
    conv: &Conversation,
    sub: &Subscriber,
    phone: &str,
    own: bool,
    tree: &RegionTree,
    composer: &Composer,
) -> Result<Vec<Reply>, StoreError> {
    match conv.store.help_request(sub.id, None).await? {
        Some(r) if r.step == HelpStep::Phone => {
            // A relative's number is as good for a call back as one's own.
            let phone = normalize(phone).ok();
            answer(conv, sub, composer, tree, |r| {
                r.phone = phone.or(r.phone.take());
                r.step = HelpStep::Done;
            })
            .await
        }
        _ => sms::on_contact(conv, sub, phone, own, composer).await,
    }
}

fn t(composer: &Composer, lang: Lang, id: &str, args: &[(&str, &str)]) -> String {
    escape(&composer.text(lang, id, args, id))
}

/// A press of the button under an evacuation message.
async fn start(
    conv: &Conversation,
    sub: &Subscriber,
    key: &str,
    region: &str,
    tree: &RegionTree,
    composer: &Composer,
) -> Result<Vec<Reply>, StoreError> {
    let lang = sub.lang;
    let view = conv.status.borrow().clone();
    let order: Option<OrderInForce> = view.orders.iter().find(|o| order_key(&o.id) == key).cloned();
    let (Some(order), Ok(region)) = (order, RegionId::parse(region)) else {
        return Ok(vec![Reply::text(t(composer, lang, "help-order-over", &[]))]);
    };
    // The resident's own place under the order, if they have one; else its region.
    let places = conv.store.places(sub.id).await?;
    let place =
        places.into_iter().find(|p| order.targets.iter().any(|target| tree.is_within(p, target))).unwrap_or(region);
    let now = now_ms();
    let earlier = conv.store.help_request(sub.id, Some(&order.id)).await?;
    let again = earlier.is_some();
    let request = match earlier {
        Some(mut r) => {
            r.region = place;
            r.step = HelpStep::People;
            r.updated_ms = now;
            r
        }
        None => HelpRequest {
            subscriber: sub.id,
            address: sub.address.clone(),
            order: order.id.clone(),
            region: place,
            people: None,
            mobility: None,
            phone: None,
            step: HelpStep::People,
            created_ms: now,
            updated_ms: now,
        },
    };
    conv.store.save_help_request(&request).await?;
    tracing::info!(order = %request.order, region = %request.region, again, "help to evacuate requested");
    let name = tree.qualified_name(&request.region, lang);
    let mut text = t(composer, lang, "help-start", &[("place", &name)]);
    if again {
        text = format!("{}\n{text}", t(composer, lang, "help-again", &[]));
    }
    Ok(vec![Reply { text, keyboard: people_keyboard(composer, lang) }])
}

/// Applies one answer to the resident's latest request and asks the next question.
async fn answer(
    conv: &Conversation,
    sub: &Subscriber,
    composer: &Composer,
    tree: &RegionTree,
    change: impl FnOnce(&mut HelpRequest),
) -> Result<Vec<Reply>, StoreError> {
    let lang = sub.lang;
    let Some(mut request) = conv.store.help_request(sub.id, None).await? else {
        return Ok(vec![Reply::text(t(composer, lang, "help-no-request", &[]))]);
    };
    change(&mut request);
    request.updated_ms = now_ms();
    conv.store.save_help_request(&request).await?;
    let skip = t(composer, lang, "help-skip", &[]);
    Ok(match request.step {
        HelpStep::People => {
            vec![Reply { text: t(composer, lang, "help-start", &[]), keyboard: people_keyboard(composer, lang) }]
        }
        HelpStep::Mobility => {
            let mut buttons: Vec<Button> = MOBILITY
                .iter()
                .map(|k| Button::new(t(composer, lang, &format!("help-mobility-{k}"), &[]), format!("{PREFIX}m:{k}")))
                .collect();
            buttons.push(Button::new(skip, format!("{PREFIX}m:-")));
            vec![Reply { text: t(composer, lang, "help-mobility", &[]), keyboard: Keyboard::column(buttons) }]
        }
        HelpStep::Phone => {
            let keyboard = Keyboard::Reply(vec![
                vec![ReplyButton::Contact(t(composer, lang, "help-phone-button", &[]))],
                vec![ReplyButton::Text(skip)],
            ]);
            vec![Reply { text: t(composer, lang, "help-phone", &[]), keyboard }]
        }
        HelpStep::Done => {
            let view = conv.status.borrow().clone();
            let hotline = view.orders.iter().find(|o| o.id == request.order).and_then(|o| o.hotline.clone());
            let place = tree.qualified_name(&request.region, lang);
            let mut text = t(composer, lang, "help-done", &[("place", &place)]);
            let people = request.people.map_or_else(|| "—".to_owned(), |n| n.to_string());
            let mobility = request
                .mobility
                .as_deref()
                .map_or_else(|| "—".to_owned(), |k| t(composer, lang, &format!("help-mobility-{k}"), &[]));
            let phone = request.phone.as_deref().map_or_else(|| "—".to_owned(), mask);
            text.push_str(&format!(
                "\n{}",
                t(composer, lang, "help-summary", &[("people", &people), ("mobility", &mobility), ("phone", &phone)])
            ));
            text.push_str(&format!(
                "\n\n{}",
                match hotline {
                    Some(h) => t(composer, lang, "help-hotline", &[("hotline", &h)]),
                    None => t(composer, lang, "help-hotline-generic", &[]),
                }
            ));
            vec![Reply { text, keyboard: Keyboard::Remove }]
        }
    })
}

fn people_keyboard(composer: &Composer, lang: Lang) -> Keyboard {
    let n = |i: u32| Button::new(if i == 5 { "5+".to_owned() } else { i.to_string() }, format!("{PREFIX}p:{i}"));
    let skip = Button::new(t(composer, lang, "help-skip", &[]), format!("{PREFIX}p:-"));
    Keyboard::Inline(vec![(1..=5).map(n).collect(), vec![skip]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn button_data_fits_64_bytes_for_any_order_id() {
        let region = RegionId::parse("UA63080070010082928").expect("id");
        assert_eq!(button_data("kupiansk-2026-12", &region), "help:kupiansk-2026-12:UA63080070010082928");
        let long = "евакуація-куп’янської-громади-".repeat(10);
        let data = button_data(&long, &region);
        assert!(data.len() <= 64, "{data}");
        assert_eq!(data, button_data(&long, &region), "stable");
        assert_ne!(order_key(&long), order_key(&format!("{long}2")), "another order, another key");
        assert!(order_key("a:b").starts_with('#'), "a colon would split the data");
        assert_eq!(order_key(&"x".repeat(24)), "x".repeat(24));
        assert!(order_key(&"x".repeat(25)).starts_with('#'));
        assert!(order_key("p").starts_with('#') && order_key("sms-off").starts_with('#'), "never a step's button");
    }
}
