//! A shared location: the nearest surveyed settlement, else the region whose boundary
//! holds the point, offered with the same "subscribe" button as a typed name; a point
//! abroad or at sea is told to type the place's name instead.
//!
//! The point is kept for the place it found ([`Store::set_place_point`]) before the
//! resident confirms: the store shows a point only with its place, so it counts once
//! the "subscribe" button adds the place, and never otherwise.

use super::conversation::{Conversation, Reply, SUBSCRIBE_PREFIX};
use crate::channels::{Button, Keyboard};
use crate::messages::{Composer, escape};
use crate::regions::geo::Located;
use crate::regions::{Point, RegionId, RegionTree};
use crate::store::{StoreError, Subscriber};

/// Answers a shared location.
pub(super) async fn on_location(
    conv: &Conversation,
    sub: &Subscriber,
    lat: f64,
    lon: f64,
    tree: &RegionTree,
    composer: &Composer,
) -> Result<Vec<Reply>, StoreError> {
    let lang = sub.lang;
    let t = |id: &str, args: &[(&str, &str)]| escape(&composer.text(lang, id, args, id));
    let offer = |id: &RegionId, text: String| {
        let button = Button::new(tree.full_name(id, lang), format!("{SUBSCRIBE_PREFIX}{id}"));
        Reply { text, keyboard: Keyboard::column([button]) }
    };
    match tree.locate(lat, lon) {
        Located::Settlement { id, km } => {
            conv.store.set_place_point(sub.id, &id, Point { lat, lon }).await?;
            let km = format!("{km:.0}");
            let place = tree.full_name(&id, lang);
            Ok(vec![offer(&id, t("location-found", &[("place", &place), ("km", &km)]))])
        }
        Located::Region(id) => {
            conv.store.set_place_point(sub.id, &id, Point { lat, lon }).await?;
            let place = tree.full_name(&id, lang);
            Ok(vec![offer(&id, t("location-region", &[("place", &place)]))])
        }
        Located::Outside => Ok(vec![Reply::text(t("location-outside", &[]))]),
    }
}
