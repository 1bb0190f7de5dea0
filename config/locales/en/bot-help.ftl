# Help to evacuate and the SMS fallback. Plain text only.

help-button = I need help to evacuate
help-start = Help to evacuate: { $place }. How many people need to leave?
help-again = You asked for help already — let's update your request.
help-skip = Skip
help-mobility = Any mobility needs?
help-mobility-wheelchair = Wheelchair
help-mobility-bedridden = Bedridden
help-mobility-walks-slowly = Walks slowly
help-mobility-none = None
help-phone = Leave a phone number to be called back? Press the button below, or "Skip".
help-phone-button = Send my number
help-done = Your request for help to evacuate is recorded: { $place }. Operators can see it.
help-summary = People: { $people }. Mobility: { $mobility }. Phone: { $phone }.
help-hotline = Evacuation hotline: { $hotline }
help-hotline-generic = If a life is in danger, call 112.
help-order-over = This evacuation order is no longer in force. If a life is in danger, call 112.
help-no-request = Press "I need help to evacuate" under an evacuation message.

sms-offer = SMS fallback: if the internet goes down, you get an SMS for the same places. Press the button below to share your number.
sms-share-button = Share my number
sms-on-short = Number received.
sms-on = SMS fallback is on for { $phone } for your places ({ $count }). To turn it off: /sms off
sms-off-button = Turn SMS off
sms-off = SMS fallback is off; no more SMS will come.
sms-not-on = The SMS fallback is not on. To turn it on: /sms
sms-not-own = That is not your number. For the SMS fallback share your own number with the button (/sms); I do not keep other people's numbers.
sms-bad-phone = Could not read the number. Please try again: /sms
sms-no-places = Subscribe to a place first (/subscribe name), then turn on the SMS fallback: /sms
