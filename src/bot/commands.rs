//! What a resident typed, parsed without IO. Anything at all parses to something:
//! unknown input becomes [`Command::Text`] or [`Command::Unknown`], never an error,
//! because every message gets an answer.

/// Longest input treated as a place name; longer text is not a name anyone types.
pub const MAX_QUERY_CHARS: usize = 200;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Start,
    Help,
    Subscribe(Option<String>),
    Unsubscribe(Option<String>),
    List,
    /// What is active in the resident's places now.
    Status,
    Lang(Option<String>),
    /// `/quiet 23:00-07:00`, `/quiet off`, or `/quiet` alone to see them.
    Quiet(Option<String>),
    /// Pause every delivery, keeping the places.
    Stop,
    /// Delete everything stored about the chat (asks first).
    Forget,
    /// A command sirena does not have, e.g. `/weather`.
    Unknown(String),
    /// Plain text: perhaps a place name.
    Text(String),
    /// Input too long to be a command argument or a place name.
    TooLong,
}

pub fn parse(input: &str) -> Command {
    let input = input.trim();
    if input.chars().count() > MAX_QUERY_CHARS + 20 {
        return Command::TooLong;
    }
    let Some(rest) = input.strip_prefix('/') else {
        return Command::Text(input.to_owned());
    };
    let (head, arg) = match rest.split_once(char::is_whitespace) {
        Some((h, a)) => (h, Some(a.trim().to_owned()).filter(|a| !a.is_empty())),
        None => (rest, None),
    };
    // `/subscribe@sirena_bot` in groups: the bot's name is not part of the command.
    let name = head.split('@').next().unwrap_or("").to_lowercase();
    match name.as_str() {
        "start" => Command::Start,
        "help" => Command::Help,
        "subscribe" | "sub" => Command::Subscribe(arg),
        "unsubscribe" | "unsub" => Command::Unsubscribe(arg),
        "list" => Command::List,
        "status" | "now" => Command::Status,
        "lang" | "language" => Command::Lang(arg),
        "quiet" => Command::Quiet(arg),
        "stop" | "pause" => Command::Stop,
        "forget" => Command::Forget,
        _ => Command::Unknown(format!("/{}", head.chars().take(32).collect::<String>())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_and_garbage() {
        let cases: &[(&str, Command)] = &[
            ("/start", Command::Start),
            ("/subscribe Кіндрашівка", Command::Subscribe(Some("Кіндрашівка".into()))),
            ("/subscribe@sirena_bot   м. Куп’янськ ", Command::Subscribe(Some("м. Куп’янськ".into()))),
            ("/subscribe", Command::Subscribe(None)),
            ("/UNSUBSCRIBE", Command::Unsubscribe(None)),
            ("/lang en", Command::Lang(Some("en".into()))),
            ("/status", Command::Status),
            ("/quiet 23:00-07:00", Command::Quiet(Some("23:00-07:00".into()))),
            ("/quiet", Command::Quiet(None)),
            ("/stop", Command::Stop),
            ("/forget@sirena_bot", Command::Forget),
            ("/weather", Command::Unknown("/weather".into())),
            ("/", Command::Unknown("/".into())),
            ("Харків", Command::Text("Харків".into())),
            ("", Command::Text(String::new())),
            ("💥💥💥", Command::Text("💥💥💥".into())),
        ];
        for (input, want) in cases {
            assert_eq!(&parse(input), want, "input {input:?}");
        }
        assert_eq!(parse(&"a".repeat(5000)), Command::TooLong);
        assert_eq!(parse(&format!("/subscribe {}", "я".repeat(5000))), Command::TooLong);
    }
}
