# A chat that writes faster than the bot can answer (the transport's flood limit).
bot-flood-slowed = Забагато повідомлень поспіль — відповідатиму повільніше, а частину пропущу. Зачекайте на відповідь, перш ніж писати ще.
