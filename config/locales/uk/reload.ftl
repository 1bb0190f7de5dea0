# What the operators' chat is told when a config change is taken.
notice-config-applied = 🔄 Налаштування перечитано (покоління { $generation }):
    { $changes }
notice-change-order-added = • розпорядження { $id } додано ({ $status })
notice-change-order-updated = • розпорядження { $id } оновлено: { $what }
notice-change-order-removed = • розпорядження { $id } прибрано з файлів
notice-change-time-added = час збору { $time } додано
notice-change-time-removed = час збору { $time } прибрано
notice-change-regions = • регіони: додано { $added }, прибрано { $removed }
