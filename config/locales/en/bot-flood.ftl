# A chat that writes faster than the bot can answer (the transport's flood limit).
bot-flood-slowed = Too many messages at once — I'll answer more slowly and may skip some. Please wait for my reply before writing more.
