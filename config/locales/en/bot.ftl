# The bot's replies to residents. Plain text only.

bot-welcome =
    Hello! I am sirena: I send air raid and evacuation alerts for the place you live in.
    Send /subscribe and the name of your village or city, for example: /subscribe Kindrashivka
bot-help =
    Commands:
    /subscribe name — get alerts for a place
    /list — your places
    /status — what is on in your places now
    /unsubscribe — stop all alerts (or /unsubscribe name)
    /lang uk or /lang en — message language
    /help — this help
bot-subscribe-usage = Write the name after the command, for example: /subscribe Kupiansk
bot-subscribed = Done. You will get alerts for: { $place }
bot-already = You are already subscribed to: { $place }
bot-not-found = I could not find “{ $query }”. Check the spelling or send the KATOTTG code.
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
bot-unknown-command = I do not know the command { $command }.
bot-too-long = That message is too long. Send /subscribe and the name of your place, or /help.
bot-not-text = I only understand text. Send the name of a place or /help.
bot-error = Something went wrong, please try again in a minute.

bot-status-alert = { $kind } in { $place } since { $since }
bot-status-clear = No alerts.
bot-status-unknown = Status unknown since { $since }: the alert feeds are not answering. Stay alert and follow official channels.
bot-status-unknown-never = Status unknown: no alert feed has answered yet. Stay alert and follow official channels.

notice-source-stale = ⚠️ Alert feed { $source } has not given a good answer since { $since }; sirena keeps its last good view.
notice-source-recovered = ✅ Alert feed { $source } answers again.
notice-all-stale = ⚠️ Every alert feed is stale since { $since }: residents' /status says "unknown".
notice-snapshot-held = ⚠️ Alert feed { $source } dropped { $held } alerts at once (empty or implausible list); the all-clears are held.
notice-snapshot-believed = ⚠️ Alert feed { $source } kept its implausible list since { $since }; sirena now believes it.
notice-config-refused = ⛔ A config change was refused; sirena keeps running on the last good config:
    { $errors }
notice-orders-missing = ⚠️ Orders in force are in no region file: { $orders }. They stay in force until you set status = "lifted" (or "cancelled").
