# Drills: scheduled test messages to residents who opted in (/drills on).
# Never said like an alert: no siren, no bold title, no sound.

drill-title = TEST — this is a drill, not an alert
drill-body = sirena is checking that its messages reach you. You do not need to do anything.
drill-opt-out = You get drills because you asked to. To stop: /drills off
bot-drills-on = You will get drill messages: tests that check sirena reaches you. To stop: /drills off
bot-drills-off = No more drill messages. Real alerts still come.
bot-drills-usage = /drills on — take part in sirena's tests; /drills off — stop
bot-drills-no-place = Choose a place first (/subscribe name): drills go to the places you chose.
