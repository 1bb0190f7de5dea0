# Тексти сповіщень sirena, українською. Лише звичайний текст: розмітку додає програма.
# Змінні: $kind — вид тривоги, $status, $place, $phone, $times, $transport, $who, $what, $when, $span (проміжок часу, напр. 10:02–10:05).

alert-started = { $kind }
alert-ended = Відбій: { $kind }
# Старт, що завершився раніше, ніж дійшов до читача: одним рядком.
alert-closed = { $kind }: { $place }, { $span }, відбій

alert-updated = Оновлення: { $kind }
# Рівні тривоги (alerts.in.ua, ukrainealarm): жовтий — нижчий.
alert-level-red = Червоний рівень: пряма загроза.
alert-level-yellow = Жовтий рівень: загроза є, але не пряма. Будьте напоготові й слідкуйте за повідомленнями.
alert-level-unknown = Рівень загрози за даними джерела.
# Жовта тривога з загрозою червоного рівня (alerts.in.ua: рівень кожної загрози свій).
alert-level-yellow-red-threat = Жовтий рівень, але загроза червоного рівня: { $threats }.
alert-threats = Загроза: { $threats }
# Рівень окремої загрози, коли він інший, ніж у тривоги.
threat-level-red = { $threat } (червоний рівень)
threat-level-yellow = { $threat } (жовтий рівень)
# Частини регіону, де триває інша тривога: при відбої вона там триває.
alert-goes-on = Тривога триває: { $places }
alert-already = Уже під тривогою: { $places }

threat-ballistic_missiles = балістичні ракети
threat-cruise_missiles = крилаті ракети
threat-unspecified_missiles = ракети
threat-drones = ударні дрони
threat-guided_bombs = керовані авіабомби
threat-aircraft = тактична авіація
threat-strategic_aviation = стратегічна авіація
threat-mig31k_departure = зліт МіГ-31К
threat-air_defense = робота ППО
threat-unidentified = невідома загроза

alert-kind-air_raid = Повітряна тривога
alert-kind-artillery = Загроза артобстрілу
alert-kind-urban_fights = Загроза вуличних боїв
alert-kind-chemical = Хімічна загроза
alert-kind-nuclear = Радіаційна загроза
alert-kind-evacuation = Евакуація
alert-kind-info = Повідомлення
alert-kind-unknown = Тривога

alert-advice-air_raid = Негайно прямуйте до найближчого укриття.
alert-advice-artillery = Прямуйте в укриття, подалі від вікон.
alert-advice-urban_fights = Залишайтеся в укритті, не виходьте на вулицю.
alert-advice-chemical = Зачиніть вікна й двері, перейдіть у приміщення, слідкуйте за повідомленнями.
alert-advice-nuclear = Залишайтеся в приміщенні або укритті, зачиніть вікна, слідкуйте за повідомленнями.
alert-advice-unknown = Будьте уважні й слідкуйте за офіційними повідомленнями.

evac-started-mandatory = Обов’язкова евакуація
evac-started-recommended = Рекомендована евакуація
evac-updated = Оновлення: { $status }
evac-ended = Розпорядження про евакуацію знято
evac-cancelled = Розпорядження про евакуацію скасовано: його видано помилково
# Тим, хто вже виїхав за скасованим розпорядженням.
evac-cancelled-advice = Якщо ви вже виїхали, повертайтеся лише тоді, коли це безпечно, і слухайте місцеву владу.
evac-closed = Розпорядження про евакуацію ({ $place }), { $span }, знято
evac-destination = Куди: { $place }
evac-assembly-points = Збірні пункти:
evac-assembly-times = відправлення о { $times }
evac-transport = Транспорт: { $transport }
evac-who = Для кого: { $who }
evac-hotline = Гаряча лінія: { $phone }
evac-expires = Діє до { $when }
evac-changed = Змінено: { $what }
evac-change-status = статус
evac-change-targets = населені пункти
evac-change-destination = місце призначення
evac-change-assembly_points = збірні пункти
evac-change-transport = транспорт
evac-change-hotline = гаряча лінія
evac-change-who = для кого
evac-change-text = текст
evac-change-expiry = строки

# SMS: по змозі одна частина (70 знаків кирилицею); речення з’єднує програма.
sms-alert-updated = Оновлення: { $kind }: { $place }
sms-alert-ended = Відбій: { $kind }: { $place }
sms-level-yellow = Жовтий рівень
sms-level-yellow-red-threat = Жовтий рівень, червона загроза: { $threats }
sms-assembly = Збір: { $point }
sms-advice-air_raid = В укриття!
sms-advice-artillery = В укриття!
sms-advice-urban_fights = Будьте в укритті!
sms-advice-chemical = Будьте в приміщенні!
sms-advice-nuclear = Будьте в приміщенні!
sms-advice-info = { "" }
sms-advice-evacuation = { "" }
sms-advice-unknown = Будьте уважні!
sms-evac-cancelled-advice = Повертайтеся, коли безпечно.
sms-hotline = Тел. { $phone }
