//! `sirena help-requests [--order ID] [--format csv]`: residents' requests for help to
//! evacuate, for the operators who call them back.
//!
//! The table is for reading on a screen, which ends up in screenshots and chat logs:
//! phones and chat ids are masked. The CSV is the call list: it carries the whole phone
//! and chat id, and is meant for a file the operator keeps as private as the store.

use std::path::Path;

use crate::channels::phone::mask as mask_phone;
use crate::config::secret::mask as mask_chat;
use crate::messages::Lang;
use crate::regions::RegionTree;
use crate::store::HelpRequest;
use crate::subscribers::{SubscribersError, open_store};

/// How to print them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
}

const COLUMNS: [&str; 9] = ["order", "region", "place", "people", "mobility", "phone", "chat", "state", "updated"];

/// Lists the stored requests (of one order) in `format`.
pub async fn list(config_dir: &Path, order: Option<&str>, format: Format) -> Result<String, SubscribersError> {
    let config = crate::config::load(config_dir)
        .map_err(|errors| SubscribersError::Config { dir: config_dir.to_owned(), errors })?;
    crate::config::location::announce(&config);
    let requests = match config.store_path() {
        Some(path) if !path.exists() => Vec::new(),
        _ => open_store(&config).await?.help_requests(order).await?,
    };
    Ok(match format {
        Format::Table => table(&requests, &config.tree),
        Format::Csv => csv(&requests, &config.tree),
    })
}

fn row(r: &HelpRequest, tree: &RegionTree, masked: bool) -> [String; 9] {
    let updated = crate::messages::kyiv(chrono::DateTime::from_timestamp_millis(r.updated_ms).unwrap_or_default());
    let phone = match (&r.phone, masked) {
        (Some(p), true) => mask_phone(p),
        (Some(p), false) => p.clone(),
        (None, _) => String::new(),
    };
    [
        r.order.clone(),
        r.region.to_string(),
        tree.qualified_name(&r.region, Lang::Uk),
        r.people.map(|n| n.to_string()).unwrap_or_default(),
        r.mobility.clone().unwrap_or_default(),
        phone,
        if masked { mask_chat(&r.address) } else { r.address.clone() },
        if r.step == crate::store::HelpStep::Done {
            "complete".into()
        } else {
            format!("answering ({})", r.step.as_str())
        },
        updated.format("%Y-%m-%d %H:%M").to_string(),
    ]
}

/// Aligned columns, phones and chat ids masked; a last line counts them.
pub fn table(requests: &[HelpRequest], tree: &RegionTree) -> String {
    let rows: Vec<[String; 9]> = requests.iter().map(|r| row(r, tree, true)).collect();
    let mut widths = COLUMNS.map(|c| c.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> =
            cells.iter().zip(widths).map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count()))).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(&COLUMNS.map(str::to_owned));
    for r in &rows {
        out.push_str(&line(r));
    }
    out.push_str(&format!("{}\n", crate::messages::plural::count(rows.len(), "request", "requests")));
    out
}

/// RFC 4180 CSV with the whole phone and chat id: the call list.
pub fn csv(requests: &[HelpRequest], tree: &RegionTree) -> String {
    let quote = |s: &str| {
        if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
    };
    let mut out = format!("{}\n", COLUMNS.join(","));
    for r in requests {
        let cells: Vec<String> = row(r, tree, false).iter().map(|c| quote(c)).collect();
        out.push_str(&format!("{}\n", cells.join(",")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regions::RegionId;
    use crate::regions::tests_support::{self, KUPIANSK};
    use crate::store::HelpStep;

    fn request(phone: Option<&str>, step: HelpStep) -> HelpRequest {
        HelpRequest {
            subscriber: 1,
            address: "123456789".into(),
            order: "kupiansk-1".into(),
            region: RegionId::parse(KUPIANSK).expect("id"),
            people: Some(3),
            mobility: Some("wheelchair".into()),
            phone: phone.map(str::to_owned),
            step,
            created_ms: 1_700_000_000_000,
            updated_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn the_table_masks_phones_and_chats_and_the_csv_does_not() {
        let tree = tests_support::tree();
        let rs = [request(Some("+380501234567"), HelpStep::Done), request(None, HelpStep::Mobility)];
        let table = table(&rs, &tree);
        assert!(table.contains("+38050***4567") && !table.contains("+380501234567"), "{table}");
        assert!(!table.contains("123456789"), "{table}");
        assert!(table.contains("complete") && table.contains("answering (mobility)"), "{table}");
        assert!(table.ends_with("2 requests\n"), "{table}");
        let csv = csv(&rs, &tree);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "order,region,place,people,mobility,phone,chat,state,updated");
        assert!(lines[1].starts_with(&format!("kupiansk-1,{KUPIANSK},")), "{csv}");
        assert!(lines[1].contains(",3,wheelchair,+380501234567,123456789,complete,"), "{csv}");
        assert_eq!(lines.len(), 3);
    }
}
