//! `sirena subscribers import | export`: subscriber lists as CSV, one place per row:
//!
//! ```text
//! channel,address,place,lang
//! sms,+380501234567,UA63080070010082928,uk
//! telegram,123456789,UA63080090010026457,en
//! ```
//!
//! [`parse`] and [`write`] are pure: text and the region tree in, rows or text out.
//! [`import_file`] and [`export`] do the IO: the config, the file and the store.
//!
//! Parsing is tolerant of what spreadsheets write (a UTF-8 byte order mark, CRLF line
//! ends, blank lines, spaces around fields, `"quoted"` fields, `;` as the separator
//! when the header uses it, the columns in any order) and strict about content: every
//! address is parsed for its channel (phone numbers normalised to E.164), every place
//! must be a region of the config, every language one sirena speaks. A bad row is
//! reported with its line number and skipped; the good ones are still imported.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::channels::{Address, BadAddress, ChannelKind};
use crate::config::{self, ConfigErrors};
use crate::messages::Lang;
use crate::regions::{BadRegionId, RegionId, RegionTree};
use crate::store::{Backend, IMPORTED_KEY, Import, Store, StoreError, now_ms};

/// The columns, in the order [`write`] puts them.
pub const COLUMNS: [&str; 4] = ["channel", "address", "place", "lang"];

/// One accepted row: a subscriber's address on a channel, one place, a language.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// 1-based line in the file.
    pub line: usize,
    pub kind: ChannelKind,
    /// Canonical: E.164 for a phone, as the store keeps it.
    pub address: String,
    pub place: RegionId,
    pub lang: Lang,
}

/// Why one row was not accepted.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    #[error("{expected} columns expected, found {found}")]
    Columns { expected: usize, found: usize },
    #[error("a quoted field is not closed")]
    UnclosedQuote,
    #[error("text after the closing quote of a field")]
    AfterQuote,
    #[error("channel `{0}` is not sms, telegram or telegram_channel")]
    Channel(String),
    #[error("{0}")]
    Address(BadAddress),
    #[error("place {0}")]
    Place(BadRegionId),
    #[error("place {0} is not a region in the config")]
    UnknownPlace(RegionId),
    #[error("lang `{0}` is not uk or en")]
    Lang(String),
    #[error("{address} is not the channel of {place} in the region files, where region channels are configured")]
    NotRegionChannel { address: String, place: RegionId },
    #[error("duplicate of line {0}")]
    Duplicate(usize),
    #[error("lang {lang}, but line {line} gives this address {first}")]
    LangConflict { lang: Lang, line: usize, first: Lang },
}

/// A row that was not accepted, with every reason found.
#[derive(Debug, PartialEq, Eq)]
pub struct Rejected {
    pub line: usize,
    pub errors: Vec<RowError>,
}

impl RowError {
    /// The reason with an address as typed (see [`BadAddress::as_typed`]).
    fn as_typed(&self) -> String {
        match self {
            RowError::Address(bad) => bad.as_typed(),
            other => other.to_string(),
        }
    }
}

impl Rejected {
    /// The row's reasons with its address as typed, for the operator running the
    /// import, who must see what is wrong in their file. Its `Display` masks phone
    /// numbers and chat ids: that one is for logs.
    pub fn as_typed(&self) -> String {
        let reasons: Vec<String> = self.errors.iter().map(RowError::as_typed).collect();
        format!("line {}: {}", self.line, reasons.join("; "))
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: ", self.line)?;
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// A file that cannot be read as a subscriber list at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    #[error("the file is empty; its first line must be the header `channel,address,place,lang`")]
    Empty,
    #[error(
        "line {line}: the header must name the columns channel, address, place and lang once each, found `{found}`"
    )]
    Header { line: usize, found: String },
}

/// A parsed file: the accepted rows and the rejected ones, in file order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Rows after the header, blank lines not counted.
    pub read: usize,
    pub rows: Vec<Row>,
    pub rejected: Vec<Rejected>,
}

/// Reads a subscriber list, checking every row against `tree`.
pub fn parse(text: &str, tree: &RegionTree) -> Result<Parsed, CsvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split('\n').enumerate().map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)));
    let Some((header_line, header)) = lines.by_ref().find(|(_, l)| !l.trim().is_empty()) else {
        return Err(CsvError::Empty);
    };
    // Spreadsheets in many locales (Ukrainian among them) separate with `;`.
    let sep = if header.contains(';') && !header.contains(',') { ';' } else { ',' };
    let bad_header = || CsvError::Header { line: header_line, found: header.trim().to_owned() };
    let names = split(header, sep).map_err(|_| bad_header())?;
    let mut column = [0usize; 4];
    for (slot, want) in column.iter_mut().zip(COLUMNS) {
        let mut at = names.iter().enumerate().filter(|(_, n)| n.eq_ignore_ascii_case(want)).map(|(i, _)| i);
        match (at.next(), at.next()) {
            (Some(i), None) => *slot = i,
            _ => return Err(bad_header()),
        }
    }
    if names.len() != COLUMNS.len() {
        return Err(bad_header());
    }

    let mut out = Parsed::default();
    let mut seen: HashMap<(ChannelKind, String, RegionId), usize> = HashMap::new();
    let mut langs: HashMap<(ChannelKind, String), (usize, Lang)> = HashMap::new();
    for (line, text) in lines {
        if text.trim().is_empty() {
            continue;
        }
        out.read += 1;
        let errors = match split(text, sep) {
            Err(e) => vec![e],
            Ok(fields) if fields.len() != COLUMNS.len() => {
                vec![RowError::Columns { expected: COLUMNS.len(), found: fields.len() }]
            }
            Ok(fields) => {
                let [channel, address, place, lang] = column.map(|i| fields[i].as_str());
                match row(line, [channel, address, place, lang], tree) {
                    Ok(row) => match check_against_earlier(&row, &mut seen, &mut langs) {
                        Ok(()) => {
                            out.rows.push(row);
                            continue;
                        }
                        Err(e) => vec![e],
                    },
                    Err(errors) => errors,
                }
            }
        };
        out.rejected.push(Rejected { line, errors });
    }
    Ok(out)
}

fn channel(s: &str) -> Option<ChannelKind> {
    match s.to_ascii_lowercase().as_str() {
        "sms" => Some(ChannelKind::Sms),
        "telegram" | "telegram_chat" => Some(ChannelKind::TelegramChat),
        "telegram_channel" => Some(ChannelKind::TelegramChannel),
        _ => None,
    }
}

/// One row on its own, every field checked.
fn row(line: usize, [channel_text, address, place, lang]: [&str; 4], tree: &RegionTree) -> Result<Row, Vec<RowError>> {
    let mut errors = Vec::new();
    let kind = channel(channel_text);
    if kind.is_none() {
        errors.push(RowError::Channel(channel_text.to_owned()));
    }
    let address = kind.and_then(|k| Address::parse(k, address).map_err(|e| errors.push(RowError::Address(e))).ok());
    let place = match RegionId::parse(place) {
        Ok(id) if tree.contains(&id) => Some(id),
        Ok(id) => {
            errors.push(RowError::UnknownPlace(id));
            None
        }
        Err(e) => {
            errors.push(RowError::Place(e));
            None
        }
    };
    let lang_parsed = Lang::parse(lang);
    if lang_parsed.is_none() {
        errors.push(RowError::Lang(lang.to_owned()));
    }
    let (Some(address), Some(place), Some(lang)) = (address, place, lang_parsed) else {
        return Err(errors);
    };
    let kind = address.kind();
    let address = address.to_string();
    // The daemon makes the store's region channels exactly those of the region files,
    // so any other would be dropped at its next start.
    if kind == ChannelKind::TelegramChannel
        && tree.get(&place).and_then(|r| r.channel.as_ref()).is_none_or(|c| c.address != address)
    {
        return Err(vec![RowError::NotRegionChannel { address, place }]);
    }
    Ok(Row { line, kind, address, place, lang })
}

fn check_against_earlier(
    row: &Row,
    seen: &mut HashMap<(ChannelKind, String, RegionId), usize>,
    langs: &mut HashMap<(ChannelKind, String), (usize, Lang)>,
) -> Result<(), RowError> {
    let key = (row.kind, row.address.clone(), row.place.clone());
    if let Some(&first) = seen.get(&key) {
        return Err(RowError::Duplicate(first));
    }
    let (line, first) = *langs.entry((row.kind, row.address.clone())).or_insert((row.line, row.lang));
    if first != row.lang {
        return Err(RowError::LangConflict { lang: row.lang, line, first });
    }
    seen.insert(key, row.line);
    Ok(())
}

/// Splits one line into trimmed fields. A field may be quoted (`"…"`, with `""` for a
/// quote inside); a quoted field does not span lines.
fn split(line: &str, sep: char) -> Result<Vec<String>, RowError> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|&c| c != sep && c.is_whitespace()).is_some() {}
        let mut field = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    None => return Err(RowError::UnclosedQuote),
                    Some('"') if chars.next_if_eq(&'"').is_some() => field.push('"'),
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            while chars.next_if(|&c| c != sep && c.is_whitespace()).is_some() {}
            fields.push(field.trim().to_owned());
            match chars.next() {
                None => return Ok(fields),
                Some(c) if c == sep => continue,
                Some(_) => return Err(RowError::AfterQuote),
            }
        }
        loop {
            match chars.next() {
                None => {
                    fields.push(field.trim().to_owned());
                    return Ok(fields);
                }
                Some(c) if c == sep => break,
                Some(c) => field.push(c),
            }
        }
        fields.push(field.trim().to_owned());
    }
}

/// Accepted rows as the store takes them: one [`Import`] per subscriber, their places
/// in file order.
pub fn to_imports<'a>(rows: impl IntoIterator<Item = &'a Row>) -> Vec<Import> {
    let mut out: Vec<Import> = Vec::new();
    let mut at: HashMap<(ChannelKind, &str), usize> = HashMap::new();
    for r in rows {
        match at.get(&(r.kind, r.address.as_str())) {
            Some(&i) => out[i].places.push(r.place.clone()),
            None => {
                at.insert((r.kind, r.address.as_str()), out.len());
                out.push(Import {
                    kind: r.kind,
                    address: r.address.clone(),
                    lang: r.lang,
                    places: vec![r.place.clone()],
                });
            }
        }
    }
    out
}

/// The rows not already in the store (given as its [`Store::export`]), and how many were.
pub fn not_yet_stored<'a>(rows: &'a [Row], stored: &[Import]) -> (Vec<&'a Row>, usize) {
    let have: HashSet<(ChannelKind, &str, &RegionId)> =
        stored.iter().flat_map(|s| s.places.iter().map(move |p| (s.kind, s.address.as_str(), p))).collect();
    let new: Vec<&Row> = rows.iter().filter(|r| !have.contains(&(r.kind, r.address.as_str(), &r.place))).collect();
    let already = rows.len() - new.len();
    (new, already)
}

/// Subscribers as a list [`parse`] reads back: the header, then one row per place.
pub fn write(subscribers: &[Import]) -> String {
    let mut out = COLUMNS.join(",");
    out.push('\n');
    for s in subscribers {
        for place in &s.places {
            // Channel names, E.164 numbers, chat ids, @usernames and region codes never
            // hold a comma or a quote, so no field needs quoting.
            out.push_str(&format!("{},{},{},{}\n", s.kind.as_str(), s.address, place, s.lang.code()));
        }
    }
    out
}

// ---------------------------------------------------------------- IO

#[derive(Debug, thiserror::Error)]
pub enum SubscribersError {
    #[error("the config in {dir} is not valid:\n{errors}")]
    Config { dir: PathBuf, errors: ConfigErrors },
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not UTF-8 text; save it as \"CSV UTF-8\"")]
    NotUtf8 { path: PathBuf },
    #[error("{path}: {source}")]
    Csv { path: PathBuf, source: CsvError },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("store password: {0}")]
    Password(#[from] crate::config::secret::SecretError),
}

/// What an import did. `read == new + already + rejected.len()`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub read: usize,
    /// Rows whose subscriber did not have the place (or was inactive) and now has it.
    pub new: usize,
    /// Rows the store already had: nothing changed for them.
    pub already: usize,
    /// Subscribers created (the rest were known, maybe with other places).
    pub created: usize,
    pub rejected: Vec<Rejected>,
    /// The warning that SMS residents in the store wait for an `[sms]` gateway the
    /// config lacks (`config::warnings::sms_without_gateway`); their rows are kept.
    pub sms_waiting: Option<String>,
}

/// The config's store; a PostgreSQL password comes from `[store] password_env`.
/// The store `[store]` names, for a command run beside (or instead of) the daemon.
pub(crate) async fn open_store(config: &config::Config) -> Result<Arc<dyn Store>, SubscribersError> {
    let password = match &config.settings.store.password_env {
        Some(var) => Some(crate::config::secret::Secret::from_env(var)?),
        None => None,
    };
    Ok(Backend::open(&config.store_location(), password.as_ref()).await?.store())
}

/// The config in `dir`, its store named on stderr (`config::location::announce`).
fn load_config(dir: &Path) -> Result<config::Config, SubscribersError> {
    let config = config::load(dir).map_err(|errors| SubscribersError::Config { dir: dir.to_owned(), errors })?;
    config::location::announce(&config);
    Ok(config)
}

/// Imports the good rows of `file` into the store of the config in `config_dir`.
/// Idempotent: importing the same file again changes nothing and says so. An existing
/// subscriber keeps their language; an inactive one is reactivated.
pub async fn import_file(config_dir: &Path, file: &Path) -> Result<ImportReport, SubscribersError> {
    let config = load_config(config_dir)?;
    let bytes = std::fs::read(file).map_err(|source| SubscribersError::Read { path: file.to_owned(), source })?;
    let text = String::from_utf8(bytes).map_err(|_| SubscribersError::NotUtf8 { path: file.to_owned() })?;
    let parsed =
        parse(&text, &config.tree).map_err(|source| SubscribersError::Csv { path: file.to_owned(), source })?;
    let store = open_store(&config).await?;
    let stored = store.export().await?;
    let (new, already) = not_yet_stored(&parsed.rows, &stored);
    let imports = to_imports(new.iter().copied());
    let created = if imports.is_empty() { 0 } else { store.import(imports).await? };
    if !new.is_empty() {
        // A daemon running on this store picks the new places up within seconds.
        store.kv_put(IMPORTED_KEY, &format!("{}-{}", now_ms(), new.len())).await?;
    }
    let sms_waiting = match config.settings.sms {
        Some(_) => None,
        None => match crate::check_config::sms_residents(&config).await {
            Ok(n) => config::warnings::sms_without_gateway(&config, n),
            Err(why) => Some(format!("warning: SMS residents could not be counted: {why}")),
        },
    };
    Ok(ImportReport { read: parsed.read, new: new.len(), already, created, rejected: parsed.rejected, sms_waiting })
}

/// Every active subscriber and place of the config's store, as CSV. A store that does
/// not exist yet is empty (and is not created).
pub async fn export(config_dir: &Path) -> Result<String, SubscribersError> {
    let config = load_config(config_dir)?;
    if let Some(path) = config.store_path()
        && !path.exists()
    {
        return Ok(write(&[]));
    }
    let store = open_store(&config).await?;
    Ok(write(&store.export().await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regions::{Level, Region, RegionChannel};

    const OBLAST: &str = "UA63000000000041885";
    const RAION: &str = "UA63080000000035203";
    const CITY: &str = "UA63080070010082928";
    const VILLAGE: &str = "UA63080090010026457";

    fn tree() -> RegionTree {
        let rid = |s: &str| RegionId::parse(s).expect("id");
        let region = |id: &str, parent: Option<&str>, level, channel: Option<&str>| Region {
            channel: channel.map(|c| RegionChannel { address: c.to_owned(), lang: Lang::Uk }),
            ..Region::bare(rid(id), parent.map(rid), level)
        };
        RegionTree::build(vec![
            region(OBLAST, None, Level::Oblast, Some("@kharkiv_sirena")),
            region(RAION, Some(OBLAST), Level::Raion, None),
            region(CITY, Some(RAION), Level::City, None),
            region(VILLAGE, Some(RAION), Level::Village, None),
        ])
        .expect("tree")
    }

    fn id(s: &str) -> RegionId {
        RegionId::parse(s).expect("id")
    }

    fn ok(text: &str) -> Parsed {
        parse(text, &tree()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn rejected(p: &Parsed) -> Vec<String> {
        p.rejected.iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn good_rows_in_every_spreadsheet_dialect() {
        let cases = [
            ("plain", format!("channel,address,place,lang\nsms,+380501234567,{CITY},uk\n")),
            ("BOM and CRLF", format!("\u{feff}channel,address,place,lang\r\nsms,+380501234567,{CITY},uk\r\n")),
            (
                "blank lines, spaces",
                format!("\n channel , address,place,lang \n\n  sms , +380501234567 ,{CITY}, uk \n\n"),
            ),
            (
                "quoted",
                format!(
                    "\"channel\",\"address\",\"place\",\"lang\"\n\"sms\", \"+380 50 123 45 67\" ,\"{CITY}\",\"uk\"\n"
                ),
            ),
            ("national number", format!("channel,address,place,lang\nsms,0501234567,{CITY},uk\n")),
            ("no plus", format!("channel,address,place,lang\nSMS,380501234567,{CITY},UK")),
            ("semicolons", format!("channel;address;place;lang\nsms;050 123-45-67;{CITY};uk\n")),
            ("columns reordered", format!("lang,place,address,channel\nuk,{CITY},+380501234567,sms\n")),
        ];
        for (name, text) in cases {
            let p = ok(&text);
            assert_eq!(rejected(&p), Vec::<String>::new(), "{name}");
            assert_eq!(p.read, 1, "{name}");
            let want = Row {
                line: p.rows[0].line,
                kind: ChannelKind::Sms,
                address: "+380501234567".into(),
                place: id(CITY),
                lang: Lang::Uk,
            };
            assert_eq!(p.rows, vec![want], "{name}");
        }
    }

    #[test]
    fn every_channel_name() {
        let p = ok(&format!(
            "channel,address,place,lang\n\
             telegram,123456789,{VILLAGE},en\n\
             telegram_chat,987654321,{VILLAGE},uk\n\
             telegram_channel,@kharkiv_sirena,{OBLAST},uk\n\
             sms,+48512345678,{CITY},en\n"
        ));
        assert_eq!(rejected(&p), Vec::<String>::new());
        let got: Vec<(ChannelKind, &str)> = p.rows.iter().map(|r| (r.kind, r.address.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (ChannelKind::TelegramChat, "123456789"),
                (ChannelKind::TelegramChat, "987654321"),
                (ChannelKind::TelegramChannel, "@kharkiv_sirena"),
                (ChannelKind::Sms, "+48512345678"),
            ]
        );
    }

    #[test]
    fn bad_rows_are_reported_by_line_and_the_rest_kept() {
        let text = format!(
            "channel,address,place,lang\n\
             sms,+380501234567,{CITY},uk\n\
             sms,+380501234567,{CITY}\n\
             sms,+380501234567,{CITY},uk,extra\n\
             sms,+38050abc4567,{CITY},uk\n\
             sms,+380501234568,UA99000000000000000,uk\n\
             sms,+380501234568,UA123,uk\n\
             sms,0501234567,{CITY},uk\n\
             sms,+380501234569,{CITY},de\n\
             viber,+380501234569,{CITY},uk\n\
             telegram,12345,UA99000000000000000,fr\n\
             sms,+380501234567,{VILLAGE},en\n\
             telegram_channel,@other_channel,{OBLAST},uk\n\
             telegram_channel,@kharkiv_sirena,{CITY},uk\n\
             sms,\"+380501234570,{CITY},uk\n\
             sms,\"+380501234570\"x,{CITY},uk\n\
             \n\
             telegram,12345,{VILLAGE},en\n"
        );
        let p = ok(&text);
        assert_eq!(
            rejected(&p),
            vec![
                "line 3: 4 columns expected, found 3".to_owned(),
                "line 4: 4 columns expected, found 5".into(),
                "line 5: `**********567` is not a sms address: `a` is a letter; a phone number is digits".into(),
                "line 6: place UA99000000000000000 is not a region in the config".into(),
                "line 7: place `UA123` is not a KATOTTG code (expected `UA` followed by 17 digits)".into(),
                "line 8: duplicate of line 2".into(),
                "line 9: lang `de` is not uk or en".into(),
                "line 10: channel `viber` is not sms, telegram or telegram_channel".into(),
                "line 11: place UA99000000000000000 is not a region in the config; lang `fr` is not uk or en".into(),
                "line 12: lang en, but line 2 gives this address uk".into(),
                format!(
                    "line 13: @other_channel is not the channel of {OBLAST} in the region files, where region channels are configured"
                ),
                format!(
                    "line 14: @kharkiv_sirena is not the channel of {CITY} in the region files, where region channels are configured"
                ),
                "line 15: a quoted field is not closed".into(),
                "line 16: text after the closing quote of a field".into(),
            ]
        );
        assert_eq!(p.read, 16, "the header and the blank line are not rows");
        assert_eq!(p.rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2, 18]);
    }

    #[test]
    fn a_file_without_its_header_is_refused_whole() {
        let t = tree();
        assert_eq!(parse("", &t), Err(CsvError::Empty));
        assert_eq!(parse("\u{feff}\r\n\r\n", &t), Err(CsvError::Empty));
        for header in [
            format!("sms,+380501234567,{CITY},uk"),
            "channel,address,place".to_owned(),
            "channel,address,place,lang,extra".to_owned(),
            "channel,address,address,lang".to_owned(),
        ] {
            let text = format!("\n{header}\nsms,+380501234567,{CITY},uk\n");
            assert_eq!(parse(&text, &t), Err(CsvError::Header { line: 2, found: header.clone() }), "{header}");
        }
    }

    #[test]
    fn rows_group_into_subscribers_and_round_trip() {
        let p = ok(&format!(
            "channel,address,place,lang\n\
             sms,+380501234567,{CITY},uk\n\
             telegram,42,{VILLAGE},en\n\
             sms,0501234567,{VILLAGE},uk\n"
        ));
        let imports = to_imports(&p.rows);
        assert_eq!(
            imports,
            vec![
                Import {
                    kind: ChannelKind::Sms,
                    address: "+380501234567".into(),
                    lang: Lang::Uk,
                    places: vec![id(CITY), id(VILLAGE)]
                },
                Import {
                    kind: ChannelKind::TelegramChat,
                    address: "42".into(),
                    lang: Lang::En,
                    places: vec![id(VILLAGE)]
                },
            ]
        );
        let text = write(&imports);
        assert_eq!(
            text,
            format!(
                "channel,address,place,lang\nsms,+380501234567,{CITY},uk\nsms,+380501234567,{VILLAGE},uk\ntelegram,42,{VILLAGE},en\n"
            )
        );
        assert_eq!(to_imports(&ok(&text).rows), imports, "an export reads back as itself");
        assert_eq!(write(&[]), "channel,address,place,lang\n");
    }

    #[test]
    fn rows_already_stored_are_counted_not_imported() {
        let p = ok(&format!(
            "channel,address,place,lang\n\
             sms,+380501234567,{CITY},uk\n\
             sms,+380501234567,{VILLAGE},uk\n\
             telegram,42,{VILLAGE},en\n"
        ));
        let stored = vec![Import {
            kind: ChannelKind::Sms,
            address: "+380501234567".into(),
            lang: Lang::Uk,
            places: vec![id(CITY)],
        }];
        let (new, already) = not_yet_stored(&p.rows, &stored);
        assert_eq!(already, 1);
        assert_eq!(new.iter().map(|r| r.line).collect::<Vec<_>>(), vec![3, 4]);
        let (new, already) = not_yet_stored(&p.rows, &to_imports(&p.rows));
        assert_eq!((new.len(), already), (0, 3));
    }
}
