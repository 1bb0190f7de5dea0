# Що мешканці читають від операторів і що оператори читають від бота.

# Мешканцям
broadcast-title = Офіційне повідомлення цивільного захисту
correction-title = Виправлення: повідомлення «{ $what }» надіслано помилково
correction-body = Не зважайте на нього. Перепрошуємо.

# Операторам (звичайний текст)
op-not-allowed = Недоступно: ця команда — для операторів цивільного захисту.
op-usage =
    Команди операторів:
    /sources — стан кожного джерела тривог
    /deliveries — хід останніх розсилок
    /broadcast місце текст — чернетка повідомлення; її має схвалити другий оператор
    /approve N або /reject N — рішення щодо чернетки іншого оператора
    /cancel id-події — надіслати виправлення всім, хто отримав цю подію
    /preview id-розпорядження — кого охопить розпорядження
    /help_requests [id-розпорядження] — мешканці, які просять допомогти виїхати
op-sources-header = Джерела тривог:
op-source-line = { $source }: { $state }, остання вдала відповідь { $since }, невдач поспіль { $failures }
op-sources-none = Джерела тривог не налаштовано.
op-deliveries-header = Останні події (у черзі / надсилається / надіслано / доставлено / помилка / інше):
op-deliveries-none = Ще нічого не надсилали.
op-broadcast-usage = Напишіть місце і текст: /broadcast Куп’янськ Водопостачання відновлять о 18:00.
op-broadcast-place = Не знайшов місце «{ $query }». Напишіть точну назву або код КАТОТТГ.
op-broadcast-ambiguous = Кілька місць мають назву «{ $query }»: { $choices }. Напишіть код КАТОТТГ.
op-broadcast-too-long = Текст задовгий ({ $length } символів; щонайбільше { $max }).
op-drafted =
    Чернетка { $id } для: { $place }
    { $text }
    Нічого не надсилається, доки інший оператор не надішле /approve { $id } (або /reject { $id }).
op-draft-for-review = Оператор { $by } створив чернетку розсилки { $id } для: { $place }
    { $text }
    /approve { $id } або /reject { $id }
op-no-draft = Відкритої чернетки { $id } немає.
op-own-draft = Чернетку { $id } написали ви: схвалити її має інший оператор.
op-approved = Чернетку { $id } схвалено: її надсилають до: { $place }.
op-approved-notice = Оператор { $by } схвалив розсилку { $id }; її надсилають.
op-rejected = Чернетку { $id } відхилено; нічого не надіслано.
op-rejected-notice = Оператор { $by } відхилив розсилку { $id }; нічого не надіслано.
op-cancel-usage = Вкажіть id події з /deliveries: /cancel broadcast:3:started
op-cancel-unknown = Події «{ $event }» немає в сховищі.
op-cancel-nobody = Ніхто не отримав «{ $event }»; нічого виправляти.
op-cancel-again = «{ $event }» уже виправлено.
op-cancelled = Виправлення «{ $event }» надсилають { $count ->
        [one] { $count } отримувачеві
       *[other] { $count } отримувачам
    }.
op-preview-usage = Вкажіть id розпорядження: /preview kupiansk-2023-11-06
op-error = Не вдалося: { $error }
notice-drill-report = Навчання { $drill } ({ $run }): { $summary }
