# What the operators' chat is told when a config change is taken.
notice-config-applied = 🔄 Налаштування перечитано (покоління { $generation }):
    { $changes }
notice-change-order-added = • розпорядження { $id } додано ({ $status })
notice-change-order-updated = • розпорядження { $id } оновлено: { $what }
notice-change-order-removed = • розпорядження { $id } прибрано з файлів
notice-change-time-added = час збору { $time } додано
notice-change-time-removed = час збору { $time } прибрано
notice-change-regions = • регіони: додано { $added ->
        [one] { $added } регіон
        [few] { $added } регіони
       *[many] { $added } регіонів
    }, прибрано { $removed ->
        [one] { $removed } регіон
        [few] { $removed } регіони
       *[many] { $removed } регіонів
    }
