//! The composer with the shipped catalogues: every kind and transition renders in both
//! languages, valid for Telegram's HTML parse mode, with the facts residents need.

use std::path::Path;

use chrono::{DateTime, Utc};
use sirena::alerts::cap::CapText;
use sirena::alerts::coverage::Reach;
use sirena::alerts::orders::{AssemblyPoint, Change, Order, OrderStatus};
use sirena::alerts::{AlertKind, AlertLevel, Event, EventDetail, EventId, Priority, Threat, ThreatKind, Transition};
use sirena::config::{self, Config};
use sirena::messages::{Format, Lang, Part};
use sirena::regions::{Localized, RegionId};
use sirena::sim::telegram::parse_html;

fn config() -> Config {
    config::load(Path::new("config")).expect("shipped config loads")
}

fn rid(s: &str) -> RegionId {
    RegionId::parse(s).expect("valid id")
}

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2023-11-06T08:00:00Z").expect("date").to_utc()
}

fn alert(kind: AlertKind, transition: Transition) -> Event {
    Event {
        id: EventId(format!("{kind}:x:{}", transition.as_str())),
        kind,
        transition,
        revision: 1,
        targets: vec![rid("UA63000000000041885")],
        reach: Default::default(),
        at: at(),
        priority: Priority::OtherStart,
        detail: EventDetail::Alert {
            started_at: at(),
            raw_kind: None,
            subject: None,
            level: None,
            threats: vec![],
            texts: vec![],
        },
    }
}

fn loc(uk: &str, en: &str) -> Localized {
    Localized { uk: uk.into(), en: Some(en.into()) }
}

fn order(status: OrderStatus) -> Order {
    Order {
        id: "kindrashivka".into(),
        status,
        targets: vec![rid("UA63080070000080622")],
        issued_at: DateTime::parse_from_rfc3339("2023-11-06T08:00:00+02:00").expect("date"),
        expires_at: None,
        destination: Some(loc("Харків", "Kharkiv")),
        transport: Some(loc("Автобуси", "Buses")),
        hotline: Some("0 800 000 000".into()),
        who: Some(loc("родини з дітьми", "families with children")),
        text: Some(loc("Беріть документи & ліки <обов’язково>", "Take documents & medicine <without fail>")),
        assembly_points: vec![AssemblyPoint {
            name: loc("Адмінбудівля \"громади\"", "Hromada \"administration\""),
            address: None,
            place: Some(rid("UA63080070010082928")),
            at: Some([49.79, 37.65]),
            at_from_place: false,
            times: vec!["10:00".into(), "14:00".into()],
        }],
    }
}

fn order_event(transition: Transition, status: OrderStatus, changes: Vec<Change>) -> Event {
    Event {
        id: EventId(format!("evacuation:kindrashivka:r1:{}", transition.as_str())),
        kind: AlertKind::Evacuation,
        transition,
        revision: 1,
        targets: vec![rid("UA63080070000080622")],
        reach: Default::default(),
        at: at(),
        priority: Priority::MandatoryEvacuation,
        detail: EventDetail::Order { order: Box::new(order(status)), changes },
    }
}

/// Renders parts and holds the text to Telegram's rules; returns the visible text.
fn render_parts(c: &Config, parts: &[Part<'_>], lang: Lang, format: Format) -> (String, bool) {
    let r = c.composer.render(parts, lang, format, &c.tree);
    let visible = parse_html(&r.text).unwrap_or_else(|e| panic!("invalid HTML ({e}) in:\n{}", r.text));
    assert!(visible.encode_utf16().count() <= 4096, "too long for Telegram");
    (visible, r.silent)
}

fn render(c: &Config, event: &Event, lang: Lang) -> (String, bool) {
    render_parts(c, &[Part::Event { event, as_new: false }], lang, Format::TelegramHtml)
}

#[test]
fn every_alert_kind_and_transition_renders_in_both_languages() {
    let c = config();
    let kinds = [
        (AlertKind::AirRaid, "Повітряна тривога", "Air raid alert"),
        (AlertKind::Artillery, "Загроза артобстрілу", "Artillery shelling threat"),
        (AlertKind::UrbanFights, "Загроза вуличних боїв", "Street fighting threat"),
        (AlertKind::Chemical, "Хімічна загроза", "Chemical threat"),
        (AlertKind::Nuclear, "Радіаційна загроза", "Radiation threat"),
        (AlertKind::Info, "Повідомлення", "Notice"),
        (AlertKind::Unknown, "Тривога", "Alert"),
    ];
    for (kind, uk, en) in kinds {
        let (text, silent) = render(&c, &alert(kind, Transition::Started), Lang::Uk);
        assert!(text.starts_with(&format!("🔴 {uk}")), "{kind} uk start: {text}");
        assert!(text.contains("Харківська область"));
        assert!(!silent, "a start always rings");
        let (text, _) = render(&c, &alert(kind, Transition::Started), Lang::En);
        assert!(text.starts_with(&format!("🔴 {en}")), "{kind} en start: {text}");
        assert!(text.contains("Kharkiv Oblast"));
        let (text, silent) = render(&c, &alert(kind, Transition::Ended), Lang::Uk);
        assert!(text.starts_with(&format!("🟢 Відбій: {uk}")), "{kind} uk end: {text}");
        assert!(silent, "an all-clear does not ring");
        let (text, _) = render(&c, &alert(kind, Transition::Ended), Lang::En);
        assert!(text.starts_with(&format!("🟢 All clear: {en}")), "{kind} en end: {text}");
    }
}

#[test]
fn evacuation_messages_carry_instructions_and_escape_html() {
    let c = config();
    let (uk, _) = render(&c, &order_event(Transition::Started, OrderStatus::Mandatory, vec![]), Lang::Uk);
    for needle in [
        "🚨 Обов’язкова евакуація",
        "Кіндрашівська громада",
        "Для кого: родини з дітьми",
        "Куди: Харків",
        "Збірні пункти:",
        "Адмінбудівля \"громади\", Кіндрашівка — відправлення о 10:00, 14:00",
        "Транспорт: Автобуси",
        "Гаряча лінія: 0 800 000 000",
        "Беріть документи & ліки <обов’язково>",
    ] {
        assert!(uk.contains(needle), "missing `{needle}` in:\n{uk}");
    }
    let (en, _) = render(&c, &order_event(Transition::Started, OrderStatus::Recommended, vec![]), Lang::En);
    for needle in [
        "🚨 Recommended evacuation",
        "Kindrashivka Hromada",
        "Destination: Kharkiv",
        "Assembly points:",
        "departures at 10:00, 14:00",
        "Transport: Buses",
        "Hotline: 0 800 000 000",
        "Take documents & medicine <without fail>",
    ] {
        assert!(en.contains(needle), "missing `{needle}` in:\n{en}");
    }
    // The raw HTML carries the operator's text escaped, not as tags.
    let event = order_event(Transition::Started, OrderStatus::Mandatory, vec![]);
    let raw =
        c.composer.render(&[Part::Event { event: &event, as_new: false }], Lang::Uk, Format::TelegramHtml, &c.tree);
    assert!(raw.text.contains("&amp; ліки &lt;обов’язково&gt;"), "{}", raw.text);
}

#[test]
fn updates_say_what_changed_and_endings_are_short() {
    let c = config();
    let event = order_event(Transition::Updated, OrderStatus::Mandatory, vec![Change::AssemblyPoints, Change::Hotline]);
    let (uk, _) = render(&c, &event, Lang::Uk);
    assert!(uk.starts_with("🔄 Оновлення: Обов’язкова евакуація"), "{uk}");
    assert!(uk.contains("Змінено: збірні пункти, гаряча лінія"), "{uk}");
    let (en, _) = render(&c, &event, Lang::En);
    assert!(en.contains("Changed: assembly points, hotline"), "{en}");

    let (lifted, silent) = render(&c, &order_event(Transition::Ended, OrderStatus::Lifted, vec![]), Lang::Uk);
    assert!(lifted.starts_with("✅ Розпорядження про евакуацію знято"), "{lifted}");
    assert!(!lifted.contains("Збірні пункти"), "an ended order repeats no instructions");
    assert!(silent);
    let (cancelled, silent) = render(&c, &order_event(Transition::Cancelled, OrderStatus::Cancelled, vec![]), Lang::En);
    assert!(cancelled.starts_with("❌ Evacuation order cancelled: it was issued in error"), "{cancelled}");
    assert!(cancelled.contains("If you have already left, return only when it is safe"), "{cancelled}");
    let (uk, _) = render(&c, &order_event(Transition::Cancelled, OrderStatus::Cancelled, vec![]), Lang::Uk);
    assert!(uk.contains("Якщо ви вже виїхали, повертайтеся лише тоді, коли це безпечно"), "{uk}");
    assert!(!silent, "a cancellation is news: it rings");
}

#[test]
fn overlong_operator_text_is_cut_to_telegrams_limit() {
    let c = config();
    let mut event = order_event(Transition::Started, OrderStatus::Mandatory, vec![]);
    if let EventDetail::Order { order, .. } = &mut event.detail {
        order.text = Some(loc(&"Дуже довгий текст & <ще>. ".repeat(400), "long"));
    }
    let (visible, _) = render(&c, &event, Lang::Uk);
    assert!(visible.starts_with("🚨 Обов’язкова евакуація"));
}

#[test]
fn several_events_are_one_message_in_the_order_given() {
    let c = config();
    let order = order_event(Transition::Started, OrderStatus::Mandatory, vec![]);
    let raid = alert(AlertKind::AirRaid, Transition::Started);
    let parts = [Part::Event { event: &order, as_new: false }, Part::Event { event: &raid, as_new: false }];
    let (text, silent) = render_parts(&c, &parts, Lang::Uk, Format::TelegramHtml);
    let evac = text.find("🚨 Обов’язкова евакуація").expect("the order");
    let air = text.find("🔴 Повітряна тривога").expect("the air raid");
    assert!(evac < air, "the higher class first:\n{text}");
    assert!(text.contains("\n\n🔴"), "parts are set apart by a blank line:\n{text}");
    assert!(!silent, "a message with a start rings");
}

#[test]
fn a_start_that_ended_before_it_was_told_is_one_line_in_kyiv_time() {
    let c = config();
    let start = alert(AlertKind::AirRaid, Transition::Started);
    let mut end = alert(AlertKind::AirRaid, Transition::Ended);
    end.at = at() + chrono::Duration::minutes(3);
    let parts = [Part::Closed { start: &start, end: &end }];
    let (uk, silent) = render_parts(&c, &parts, Lang::Uk, Format::TelegramHtml);
    // 08:00 UTC on 6 November 2023 is 10:00 in Kyiv (winter time, UTC+2).
    assert_eq!(uk, "🟢 Повітряна тривога: Харківська область, 10:00–10:03, відбій");
    assert!(silent, "news that is already over does not ring");
    let (en, _) = render_parts(&c, &parts, Lang::En, Format::TelegramHtml);
    assert_eq!(en, "🟢 Air raid alert in Kharkiv Oblast, 10:00–10:03, ended");
}

#[test]
fn an_update_merged_with_its_start_reads_as_a_start() {
    let c = config();
    let update = order_event(Transition::Updated, OrderStatus::Mandatory, vec![Change::Hotline]);
    let (text, _) = render_parts(&c, &[Part::Event { event: &update, as_new: true }], Lang::Uk, Format::TelegramHtml);
    assert!(text.starts_with("🚨 Обов’язкова евакуація"), "{text}");
    assert!(!text.contains("Змінено"), "a reader who never had the order is not told what changed:\n{text}");
}

#[test]
fn sms_is_compact_plain_text_with_the_facts() {
    let c = config();
    let order = order_event(Transition::Started, OrderStatus::Mandatory, vec![]);
    let r = c.composer.render(&[Part::Event { event: &order, as_new: false }], Lang::Uk, Format::Sms, &c.tree);
    for needle in ["Обов’язкова евакуація", "Кіндрашівська громада", "Куди: Харків", "10:00", "Тел. 0 800 000 000"]
    {
        assert!(r.text.contains(needle), "missing `{needle}` in: {}", r.text);
    }
    assert!(!r.text.contains('<') || r.text.contains("<обов’язково>"), "no markup: {}", r.text);
    assert!(!r.text.contains("&amp;") && !r.text.contains("🚨") && !r.text.contains("<b>"), "{}", r.text);
    let parts = sirena::messages::sms::segments(&r.text).parts;
    assert!(parts <= c.composer.sms_max_parts(), "{parts} parts: {}", r.text);

    // A cancelled order tells whoever left already when to return, within the budget.
    let cancelled = order_event(Transition::Cancelled, OrderStatus::Cancelled, vec![]);
    let r = c.composer.render(&[Part::Event { event: &cancelled, as_new: false }], Lang::Uk, Format::Sms, &c.tree);
    assert!(r.text.contains("Повертайтеся, коли безпечно."), "{}", r.text);
    assert!(r.text.contains("Тел. 0 800 000 000"), "{}", r.text);
    let parts = sirena::messages::sms::segments(&r.text).parts;
    assert!(parts <= c.composer.sms_max_parts(), "{parts} parts: {}", r.text);
}

#[test]
fn every_alert_sms_in_ukrainian_is_one_part_for_the_demo_places() {
    let c = config();
    let places = ["UA63000000000041885", "UA63080000000032022", "UA63080070000080622", "UA63080090000067457"];
    for kind in [
        AlertKind::AirRaid,
        AlertKind::Artillery,
        AlertKind::UrbanFights,
        AlertKind::Chemical,
        AlertKind::Nuclear,
        AlertKind::Info,
        AlertKind::Unknown,
    ] {
        for transition in [Transition::Started, Transition::Updated, Transition::Ended] {
            for place in places {
                let mut e = alert(kind, transition);
                e.targets = vec![rid(place)];
                let r = c.composer.render(&[Part::Event { event: &e, as_new: false }], Lang::Uk, Format::Sms, &c.tree);
                let s = sirena::messages::sms::segments(&r.text);
                assert_eq!(s.parts, 1, "{kind} {transition:?} in {place}: {} units: {}", s.units, r.text);
            }
        }
    }
}

#[test]
fn a_long_order_sms_drops_details_in_order_but_keeps_the_hotline() {
    let config = config();
    let tree = config.tree.clone();
    let c = std::sync::Arc::into_inner(config.composer).expect("one owner").with_sms_max_parts(1);
    let order = order_event(Transition::Started, OrderStatus::Mandatory, vec![]);
    let r = c.render(&[Part::Event { event: &order, as_new: false }], Lang::Uk, Format::Sms, &tree);
    assert_eq!(sirena::messages::sms::segments(&r.text).parts, 1, "{}", r.text);
    assert!(r.text.contains("Обов’язкова евакуація") && r.text.contains("0 800 000 000"), "{}", r.text);
}

#[test]
fn a_channel_post_carries_the_places_as_hashtags() {
    let c = config();
    let raid = alert(AlertKind::AirRaid, Transition::Started);
    let (text, _) = render_parts(&c, &[Part::Event { event: &raid, as_new: false }], Lang::Uk, Format::ChannelPost);
    assert!(text.ends_with("#Харківська_область"), "{text}");
}

#[test]
fn level_threats_and_what_goes_on_are_said_in_both_languages() {
    let c = config();
    let mut start = alert(AlertKind::AirRaid, Transition::Started);
    start.detail = EventDetail::Alert {
        started_at: at(),
        raw_kind: None,
        subject: None,
        level: Some(AlertLevel::Yellow),
        threats: vec![Threat::of(ThreatKind::BallisticMissiles), Threat::of(ThreatKind::Unknown("hypersonic".into()))],
        texts: vec![],
    };
    let (uk, _) = render(&c, &start, Lang::Uk);
    // A yellow level says what it means and what to do.
    assert!(
        uk.contains("Жовтий рівень: загроза є, але не пряма. Будьте напоготові й слідкуйте за повідомленнями."),
        "{uk}"
    );
    assert!(uk.contains("Загроза: балістичні ракети, hypersonic"), "{uk}");
    let (en, _) = render(&c, &start, Lang::En);
    assert!(en.contains("Yellow level: a threat, but not a direct one. Stay ready and follow the messages."), "{en}");
    assert!(en.contains("Threat: ballistic missiles, hypersonic"), "{en}");

    let mut update = start.clone();
    update.transition = Transition::Updated;
    let (en, _) = render(&c, &update, Lang::En);
    assert!(en.starts_with("🔴 Update: Air raid alert"), "{en}");
    assert!(!en.contains("shelter"), "advice is for starts: {en}");

    // The oblast's all-clear while Kupiansk raion stays under alert.
    let mut end = alert(AlertKind::AirRaid, Transition::Ended);
    end.reach = Reach { except_areas: vec![rid("UA63080000000032022")], ..Reach::default() };
    let (uk, _) = render(&c, &end, Lang::Uk);
    assert!(uk.contains("Тривога триває: Куп’янський район"), "{uk}");
    assert!(!uk.contains("Загроза"), "an all-clear names no threat: {uk}");
    let (en, _) = render(&c, &end, Lang::En);
    assert!(en.contains("The alert goes on in: Kupiansk Raion"), "{en}");
}

/// alerts.in.ua gives each threat its own level: a yellow alert can carry a red
/// threat, and the reader is told so, in the message and in the SMS.
#[test]
fn a_yellow_alert_with_a_red_threat_says_so() {
    let c = config();
    let mut start = alert(AlertKind::AirRaid, Transition::Started);
    start.detail = EventDetail::Alert {
        started_at: at(),
        raw_kind: None,
        subject: None,
        level: Some(AlertLevel::Yellow),
        threats: vec![
            Threat::at(ThreatKind::BallisticMissiles, AlertLevel::Red),
            Threat::at(ThreatKind::Drones, AlertLevel::Yellow),
        ],
        texts: vec![],
    };
    let (uk, _) = render(&c, &start, Lang::Uk);
    assert!(uk.contains("Жовтий рівень, але загроза червоного рівня: балістичні ракети."), "{uk}");
    assert!(!uk.contains("загроза нижчого рівня"), "{uk}");
    // Only the threat whose level differs from the alert's says its level.
    assert!(uk.contains("Загроза: балістичні ракети (червоний рівень), ударні дрони\n"), "{uk}");
    let (en, _) = render(&c, &start, Lang::En);
    assert!(en.contains("Yellow level, but a red-level threat: ballistic missiles."), "{en}");
    assert!(en.contains("Threat: ballistic missiles (red level), attack drones\n"), "{en}");
    let sms = c.composer.render(&[Part::Event { event: &start, as_new: false }], Lang::Uk, Format::Sms, &c.tree);
    assert!(sms.text.contains("Жовтий рівень, червона загроза: балістичні ракети"), "{}", sms.text);

    // A red alert: its red threats need no word of their level, the new kinds have names.
    if let EventDetail::Alert { level, threats, .. } = &mut start.detail {
        *level = Some(AlertLevel::Red);
        *threats = vec![
            Threat::at(ThreatKind::UnspecifiedMissiles, AlertLevel::Red),
            Threat::at(ThreatKind::Mig31kDeparture, AlertLevel::Red),
            Threat::of(ThreatKind::Unidentified),
        ];
    }
    let (uk, _) = render(&c, &start, Lang::Uk);
    assert!(uk.contains("Червоний рівень: пряма загроза."), "{uk}");
    assert!(uk.contains("Загроза: ракети, зліт МіГ-31К, невідома загроза"), "{uk}");
    let (en, _) = render(&c, &start, Lang::En);
    assert!(en.contains("Threat: missiles, MiG-31K takeoff, unidentified threat"), "{en}");
}

#[test]
fn a_cap_alert_says_its_senders_words_in_the_readers_language_else_the_first() {
    let c = config();
    let text = |lang: &str, headline: &str, instruction: &str| CapText {
        lang: lang.into(),
        event: String::new(),
        headline: Some(headline.into()),
        description: None,
        instruction: Some(instruction.into()),
    };
    let mut start = alert(AlertKind::AirRaid, Transition::Started);
    start.detail = EventDetail::Alert {
        started_at: at(),
        raw_kind: None,
        subject: None,
        level: None,
        threats: vec![],
        texts: vec![
            text("uk-UA", "Загроза <ракетного> удару", "Негайно в укриття"),
            text("en-US", "Missile strike threat", "Shelter now"),
        ],
    };
    let (uk, _) = render(&c, &start, Lang::Uk);
    assert!(uk.contains("Загроза <ракетного> удару") && uk.contains("Негайно в укриття"), "{uk}");
    assert!(!uk.contains("Missile"), "{uk}");
    let (en, _) = render(&c, &start, Lang::En);
    assert!(en.contains("Missile strike threat") && en.contains("Shelter now"), "{en}");
    // Only English from the sender: a Ukrainian reader gets it rather than nothing.
    if let EventDetail::Alert { texts, .. } = &mut start.detail {
        texts.remove(0);
    }
    let (uk, _) = render(&c, &start, Lang::Uk);
    assert!(uk.starts_with("🔴 Повітряна тривога") && uk.contains("Missile strike threat"), "{uk}");
}
