# Answers to a shared location. Plain text only.

location-found = The nearest place to your point: { $place } ({ $km } km away). Subscribe to it? If it is not your place, type its name.
location-region = There is no place with surveyed coordinates near your point. The point lies in: { $place }. You can subscribe to the whole region — or type your village's or town's name.
location-outside = This point is outside Ukraine or at sea. Type the name of your village or town, for example: Kupiansk
