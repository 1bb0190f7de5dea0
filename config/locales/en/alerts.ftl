# sirena alert texts, English. Plain text only: the program adds the markup.
# Variables: $kind, $status, $place, $phone, $times, $transport, $who, $what, $when, $span (a time span, e.g. 10:02–10:05).

alert-started = { $kind }
alert-ended = All clear: { $kind }
# A start that ended before it reached the reader, in one line.
alert-closed = { $kind } in { $place }, { $span }, ended

alert-updated = Update: { $kind }
# Alert levels (alerts.in.ua, ukrainealarm): yellow is the lower tier.
alert-level-red = Red level: a direct threat.
alert-level-yellow = Yellow level: a threat, but not a direct one. Stay ready and follow the messages.
alert-level-unknown = Threat level as reported by the source.
# A yellow alert carrying a red-level threat (alerts.in.ua gives each threat its own level).
alert-level-yellow-red-threat = Yellow level, but a red-level threat: { $threats }.
alert-threats = Threat: { $threats }
# One threat's level, where it differs from its alert's.
threat-level-red = { $threat } (red level)
threat-level-yellow = { $threat } (yellow level)
# Parts of the region another alert decides: on an all-clear it goes on there.
alert-goes-on = The alert goes on in: { $places }
alert-already = Already under alert: { $places }

threat-ballistic_missiles = ballistic missiles
threat-cruise_missiles = cruise missiles
threat-unspecified_missiles = missiles
threat-drones = attack drones
threat-guided_bombs = guided aerial bombs
threat-aircraft = tactical aviation
threat-strategic_aviation = strategic aviation
threat-mig31k_departure = MiG-31K takeoff
threat-air_defense = air defence at work
threat-unidentified = unidentified threat

alert-kind-air_raid = Air raid alert
alert-kind-artillery = Artillery shelling threat
alert-kind-urban_fights = Street fighting threat
alert-kind-chemical = Chemical threat
alert-kind-nuclear = Radiation threat
alert-kind-evacuation = Evacuation
alert-kind-info = Notice
alert-kind-unknown = Alert

alert-advice-air_raid = Go to the nearest shelter now.
alert-advice-artillery = Take shelter, away from windows.
alert-advice-urban_fights = Stay in shelter and off the streets.
alert-advice-chemical = Close windows and doors, stay indoors, follow official updates.
alert-advice-nuclear = Stay indoors or in a shelter, close windows, follow official updates.
alert-advice-unknown = Stay alert and follow official updates.

evac-started-mandatory = Mandatory evacuation
evac-started-recommended = Recommended evacuation
evac-updated = Update: { $status }
evac-ended = Evacuation order lifted
evac-cancelled = Evacuation order cancelled: it was issued in error
# For those who already left on the cancelled order.
evac-cancelled-advice = If you have already left, return only when it is safe, and follow the local authorities.
evac-closed = Evacuation order for { $place }, { $span }, lifted
evac-destination = Destination: { $place }
evac-assembly-points = Assembly points:
evac-assembly-times = departures at { $times }
evac-transport = Transport: { $transport }
evac-who = For: { $who }
evac-hotline = Hotline: { $phone }
evac-expires = Valid until { $when }
evac-changed = Changed: { $what }
evac-change-status = status
evac-change-targets = places
evac-change-destination = destination
evac-change-assembly_points = assembly points
evac-change-transport = transport
evac-change-hotline = hotline
evac-change-who = who should leave
evac-change-text = text
evac-change-expiry = dates

# SMS: one part where possible (70 characters in Cyrillic); the program joins sentences.
sms-alert-updated = Update: { $kind }: { $place }
sms-alert-ended = All clear: { $kind }: { $place }
sms-level-yellow = Yellow level
sms-level-yellow-red-threat = Yellow level, red threat: { $threats }
sms-assembly = Assembly: { $point }
sms-advice-air_raid = Shelter now!
sms-advice-artillery = Take shelter!
sms-advice-urban_fights = Stay in shelter!
sms-advice-chemical = Stay indoors!
sms-advice-nuclear = Stay indoors!
sms-advice-info = { "" }
sms-advice-evacuation = { "" }
sms-advice-unknown = Stay alert!
sms-evac-cancelled-advice = Left already? Return only when safe.
sms-hotline = Tel. { $phone }
