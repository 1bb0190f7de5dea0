# The bot's replies to residents. Plain text only.

bot-welcome =
    Hello! I am sirena: I send air raid and evacuation alerts for the place you live in.
    Send /subscribe and the name of your village or city, for example: /subscribe Kindrashivka
bot-help =
    Commands:
    /subscribe name — get alerts for a place
    /list — your places: remove, name, choose which alerts
    /status — what is on in your places now
    /sms — SMS fallback: alerts by SMS if the internet goes down; /sms off
    /drills on — take part in test alerts; /drills off
    /quiet 23:00-07:00 — quiet hours (no sound, except a threat at your home place); /quiet off
    /stop — pause, /start — resume
    /unsubscribe — stop all alerts (or /unsubscribe name)
    /forget — delete everything I keep about you
    /lang uk or /lang en — message language
    /help — this help
    Advanced: /subscribe UA63… — subscribe by KATOTTG code
bot-subscribe-usage = Write the name after the command, for example: /subscribe Kupiansk
bot-subscribed = Done. You will get alerts for: { $place }
bot-already = You are already subscribed to: { $place }
bot-not-found = I could not find “{ $query }”. Check the spelling (Ukrainian or Latin letters) or share your location: 📎 → Location.
bot-choose = Several places are called “{ $query }”. Choose yours:
bot-offer = Subscribe to this place?
bot-did-you-mean = No place is called “{ $query }”. Did you mean:
bot-list-header = You get alerts for:
bot-list-empty = You have not chosen a place yet. Send /subscribe and a name.
bot-unsubscribed-all = You are unsubscribed from all places. To come back: /subscribe name
bot-unsubscribed = No more alerts for: { $place }
bot-not-subscribed = You are not subscribed to “{ $query }”. Your places: /list
bot-lang-set = Language changed: English.
bot-lang-usage = Choose a language: /lang uk or /lang en
bot-unknown-command = I do not know the command { $command }. All commands: /help
bot-too-long = That message is too long. Send /subscribe and the name of your place, or /help.
bot-not-text = I only understand text. Send the name of a place or /help.
bot-error = Something went wrong, please try again in a minute.

# Alert feeds as residents know them (by the source's kind).
source-alerts_in_ua = alerts.in.ua
source-ukrainealarm = Air Alert (ukrainealarm)
source-cap = an official CAP warning
bot-status-alert = { $kind } in { $place } since { $since } (source: { $sources })
bot-status-clear = No alerts.
bot-status-unknown = Status unknown since { $since }: the alert feeds are not answering. Stay alert and follow official channels.
bot-status-unknown-never = Status unknown: no alert feed has answered yet. Stay alert and follow official channels.

bot-welcome-back = Welcome back! Here are your places.
bot-choose-lang = Оберіть мову / Choose a language:
bot-where =
    Where do you live? Three ways:
    • type the name of your village or city, for example: Kindrashivka
    • share your location with the button below
    • or pick from the list: oblast → raion → hromada → settlement
bot-share-location = 📍 Share my location
bot-browse-top = Choose your oblast (page { $page } of { $pages }):
bot-browse = { $place }: choose (page { $page } of { $pages }):
bot-browse-whole = 🔔 All of { $place }
bot-browse-up = ⬆ Back
bot-you-get = You will get: air raid alerts, shelling and other threats, evacuation orders, and all-clears.
bot-now = There right now:
bot-button-label = ✏️ Name it
bot-button-filter = ⚙️ Which alerts
bot-stale-button = This button is out of date: the list has changed. Send /list or the place name again.
bot-admins-only = In a group only administrators can change the subscriptions.
bot-label-ask = What shall I call “{ $place }”? Write a short name, for example: home, parents.
bot-label-set = Done: “{ $label }” is { $place }.
bot-filter = Which alerts for “{ $place }”? Press to switch each on or off.
bot-filter-saved = Saved for “{ $place }”. New kinds of alert sirena does not know yet always come through.
bot-filter-empty = At least one kind must stay on for “{ $place }”. To remove the place: /list.
bot-filter-all = Every kind
bot-kind-air_raid = Air raid
bot-kind-artillery = Shelling
bot-kind-urban_fights = Street fighting
bot-kind-chemical = Chemical threat
bot-kind-nuclear = Radiation threat
bot-kind-evacuation = Evacuation
bot-kind-info = Notices
bot-quiet-usage = Quiet hours, Kyiv time: /quiet 23:00-07:00. Off: /quiet off. Nothing is held back: messages arrive without sound, and a new threat or evacuation at your home place (the first in /list) still rings.
bot-quiet-set = Quiet hours: { $hours } (Kyiv time). Then messages arrive without sound, except a new threat or evacuation at your home place (the first in /list).
bot-quiet-now = Quiet hours: { $hours } (Kyiv time). Off: /quiet off
bot-quiet-off = Quiet hours are off: every message rings.
bot-paused = Deliveries are paused; your places are kept. To resume: /start
bot-resumed = Deliveries are back on.
bot-forget-ask = Delete everything I keep about you: places, their names, quiet hours? This cannot be undone.
bot-forget-yes = Yes, delete
bot-forget-no = No
bot-forgotten = Everything is deleted. No more messages. To start again: /start
bot-forget-kept = Nothing was deleted.

notice-source-stale = ⚠️ Alert feed { $source } has not given a good answer since { $since }; sirena keeps its last good view.
notice-source-recovered = ✅ Alert feed { $source } answers again.
notice-all-stale = ⚠️ Every alert feed is stale since { $since }: residents' /status says "unknown".
notice-snapshot-held = ⚠️ Alert feed { $source } dropped { $held ->
        [one] { $held } alert
       *[other] { $held } alerts
    } at once (empty or implausible list); the all-clears are held.
notice-snapshot-believed = ⚠️ Alert feed { $source } kept its implausible list since { $since }; sirena now believes it.
notice-config-refused = ⛔ A config change was refused; sirena keeps running on the last good config:
    { $errors }
notice-orders-missing = ⚠️ Orders in force are in no region file: { $orders }. They stay in force until you set status = "lifted" (or "cancelled").
notice-credential-refused = ⛔ { $platform } refuses the token in { $var } (HTTP { $status }). Unless it is accepted again, sirena stops in { $minutes } min so that it is restarted; replace the token.
notice-credential-accepted = ✅ { $platform } accepts the token in { $var } again.
