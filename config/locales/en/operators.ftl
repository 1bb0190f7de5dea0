# What residents read from operators, and what operators read from the bot.

# Residents
broadcast-title = Official message from civil protection
correction-title = Correction: the message “{ $what }” was sent in error
correction-body = Disregard it. We are sorry.

# Operators (plain text)
op-not-allowed = Not allowed: this command is for civil-protection operators.
op-usage =
    Operator commands:
    /sources — health of each alert feed
    /deliveries — progress of recent fan-outs
    /broadcast place text — draft a message; a second operator must approve it
    /approve N or /reject N — decide on another operator's draft
    /cancel event-id — send a correction to everyone who got that event
    /preview order-id — who an order would reach
    /help_requests [order-id] — residents who asked for help to leave
op-sources-header = Alert feeds:
op-source-line = { $source }: { $state }, last good answer { $since }, failures in a row { $failures }
op-sources-none = No alert feeds are configured.
op-deliveries-header = Recent events (queued / sending / sent / delivered / failed / other):
op-deliveries-none = Nothing has been sent yet.
op-broadcast-usage = Write the place and the text: /broadcast Kupiansk The water supply is back at 18:00.
op-broadcast-place = I could not find the place “{ $query }”. Use its name exactly or its KATOTTG code.
op-broadcast-ambiguous = Several places are called “{ $query }”: { $choices }. Use the KATOTTG code.
op-broadcast-too-long = The text is too long ({ $length } characters; at most { $max }).
op-drafted =
    Draft { $id } for { $place }:
    { $text }
    Nothing is sent until another operator sends /approve { $id } (or /reject { $id }).
op-draft-for-review = Operator { $by } drafted broadcast { $id } for { $place }:
    { $text }
    /approve { $id } or /reject { $id }
op-no-draft = There is no open draft { $id }.
op-own-draft = You wrote draft { $id }: another operator must approve it.
op-approved = Draft { $id } approved: it is being sent to { $place }.
op-approved-notice = Operator { $by } approved broadcast { $id }; it is being sent.
op-rejected = Draft { $id } rejected; nothing was sent.
op-rejected-notice = Operator { $by } rejected broadcast { $id }; nothing was sent.
op-cancel-usage = Give the event id from /deliveries: /cancel broadcast:3:started
op-cancel-unknown = No event “{ $event }” is stored.
op-cancel-nobody = Nobody got “{ $event }”; nothing to correct.
op-cancel-again = “{ $event }” was already corrected.
op-cancelled = A correction of “{ $event }” is being sent to { $count ->
        [one] { $count } recipient
       *[other] { $count } recipients
    }.
op-preview-usage = Give the order id: /preview kupiansk-2023-11-06
op-error = Could not do that: { $error }
notice-drill-report = Drill { $drill } ({ $run }): { $summary }
