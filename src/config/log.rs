//! `[log]` in `sirena.toml`: how the daemon writes its log. `format = "pretty"` (the
//! default) is one readable line per event, coloured only when stderr is a terminal;
//! `"json"` is one JSON object per line, for a log shipper. `SIRENA_LOG_FORMAT`
//! overrides the file.

use std::path::Path;

use serde::Deserialize;

/// The environment variable that overrides `[log] format`.
pub const FORMAT_ENV: &str = "SIRENA_LOG_FORMAT";

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    #[serde(default)]
    pub format: LogFormat,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown log format `{0}`: expected `json` or `pretty`")]
pub struct UnknownFormat(pub String);

impl std::str::FromStr for LogFormat {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<LogFormat, UnknownFormat> {
        match s.trim() {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            other => Err(UnknownFormat(other.to_owned())),
        }
    }
}

/// `[log] format` of `dir/sirena.toml`, read before logging starts and before the
/// config is validated: `None` when the file cannot be read or says nothing usable.
/// `load` validates the same key and reports a bad value with its line.
pub fn peek_format(dir: &Path) -> Option<LogFormat> {
    let text = std::fs::read_to_string(dir.join("sirena.toml")).ok()?;
    let table: toml::Table = text.parse().ok()?;
    table.get("log")?.get("format")?.as_str()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_is_read_from_the_file_and_a_broken_file_says_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(peek_format(dir.path()), None, "no file");
        let write = |t: &str| std::fs::write(dir.path().join("sirena.toml"), t).expect("write");
        write("[store]\npath = \"x.db\"\n[log]\nformat = \"json\"\n");
        assert_eq!(peek_format(dir.path()), Some(LogFormat::Json));
        write("[log]\nformat = \"xml\"\n");
        assert_eq!(peek_format(dir.path()), None);
        write("[log]\nformat = \"json\"\n[store\n");
        assert_eq!(peek_format(dir.path()), None, "half a file");
        assert_eq!("pretty".parse(), Ok(LogFormat::Pretty));
        assert_eq!("yaml".parse::<LogFormat>(), Err(UnknownFormat("yaml".into())));
    }
}
