# What the operators' chat is told when a config change is taken.
notice-config-applied = 🔄 Config reloaded (generation { $generation }):
    { $changes }
notice-change-order-added = • order { $id } added ({ $status })
notice-change-order-updated = • order { $id } updated: { $what }
notice-change-order-removed = • order { $id } removed from the files
notice-change-time-added = assembly time { $time } added
notice-change-time-removed = assembly time { $time } removed
notice-change-regions = • regions: { $added ->
        [one] { $added } region
       *[other] { $added } regions
    } added, { $removed ->
        [one] { $removed } region
       *[other] { $removed } regions
    } removed
