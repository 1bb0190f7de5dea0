//! What an operator typed, parsed without IO. Only the operators' own commands parse;
//! anything else is `None` and goes to the residents' conversation.

/// Longest broadcast text: it must fit one Telegram message with its frame.
pub const MAX_BROADCAST_CHARS: usize = 3000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpCommand {
    Sources,
    Deliveries,
    /// `/broadcast <place> <text>`: the first word (or a KATOTTG code) is the place,
    /// the rest the text. `None` when either is missing.
    Broadcast(Option<(String, String)>),
    Approve(Option<u64>),
    Reject(Option<u64>),
    /// `/cancel <event id>`. A bare `/cancel` is not an operator command: residents'
    /// flows may use it to abandon what they were doing.
    Cancel(String),
    Preview(Option<String>),
    /// `/help_requests [order id]`: residents who asked for help to leave.
    HelpRequests(Option<String>),
    /// `/operator` or `/ops`: the list of operator commands.
    Usage,
}

/// A resident's `/drills on|off`: `Some(None)` for a bare `/drills` or another word.
pub fn parse_drills(input: &str) -> Option<Option<bool>> {
    let (name, arg) = split(input)?;
    (name == "drills").then(|| match arg.map(str::to_lowercase).as_deref() {
        Some("on" | "yes" | "так" | "увімкнути") => Some(true),
        Some("off" | "no" | "ні" | "вимкнути") => Some(false),
        _ => None,
    })
}

pub fn parse(input: &str) -> Option<OpCommand> {
    let (name, arg) = split(input)?;
    let number = |a: Option<&str>| a.and_then(|a| a.trim_start_matches('#').parse::<u64>().ok());
    Some(match name.as_str() {
        "sources" => OpCommand::Sources,
        "deliveries" => OpCommand::Deliveries,
        "broadcast" => OpCommand::Broadcast(arg.and_then(|a| {
            let (place, text) = a.split_once(char::is_whitespace)?;
            let text = text.trim();
            (!text.is_empty()).then(|| (place.to_owned(), text.to_owned()))
        })),
        "approve" => OpCommand::Approve(number(arg)),
        "reject" => OpCommand::Reject(number(arg)),
        "cancel" => OpCommand::Cancel(arg?.split_whitespace().next()?.to_owned()),
        "preview" => OpCommand::Preview(arg.map(str::to_owned)),
        "help_requests" | "helprequests" => OpCommand::HelpRequests(arg.map(str::to_owned)),
        "operator" | "ops" => OpCommand::Usage,
        _ => return None,
    })
}

/// The command's name (lowercase, without `@bot`) and its trimmed argument.
fn split(input: &str) -> Option<(String, Option<&str>)> {
    let rest = input.trim().strip_prefix('/')?;
    let (head, arg) = match rest.split_once(char::is_whitespace) {
        Some((h, a)) => (h, Some(a.trim()).filter(|a| !a.is_empty())),
        None => (rest, None),
    };
    Some((head.split('@').next().unwrap_or("").to_lowercase(), arg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_operator_commands_and_leaves_the_rest() {
        let cases: &[(&str, Option<OpCommand>)] = &[
            ("/sources", Some(OpCommand::Sources)),
            ("/deliveries@sirena_bot", Some(OpCommand::Deliveries)),
            (
                "/broadcast Куп’янськ  Вода буде о 18:00.",
                Some(OpCommand::Broadcast(Some(("Куп’янськ".into(), "Вода буде о 18:00.".into())))),
            ),
            ("/broadcast Kupiansk", Some(OpCommand::Broadcast(None))),
            ("/broadcast", Some(OpCommand::Broadcast(None))),
            ("/approve 3", Some(OpCommand::Approve(Some(3)))),
            ("/approve #3", Some(OpCommand::Approve(Some(3)))),
            ("/approve three", Some(OpCommand::Approve(None))),
            ("/reject 4", Some(OpCommand::Reject(Some(4)))),
            ("/cancel broadcast:1:started", Some(OpCommand::Cancel("broadcast:1:started".into()))),
            ("/cancel", None),
            ("/preview kupiansk-2023-11-06", Some(OpCommand::Preview(Some("kupiansk-2023-11-06".into())))),
            ("/help_requests", Some(OpCommand::HelpRequests(None))),
            ("/help_requests@sirena_bot k-1", Some(OpCommand::HelpRequests(Some("k-1".into())))),
            ("/subscribe Kupiansk", None),
            ("sources", None),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(&parse(input), want, "input {input:?}");
        }
    }

    #[test]
    fn parses_drills_opt_in() {
        assert_eq!(parse_drills("/drills on"), Some(Some(true)));
        assert_eq!(parse_drills("/drills OFF"), Some(Some(false)));
        assert_eq!(parse_drills("/drills"), Some(None));
        assert_eq!(parse_drills("/drills maybe"), Some(None));
        assert_eq!(parse_drills("/status"), None);
    }
}
