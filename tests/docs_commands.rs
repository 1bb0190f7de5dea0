//! Every `sirena …` command the README and docs/ show in a code block goes through the
//! real command-line parser (`--help` appended, so nothing runs): a renamed command or
//! flag breaks this test, not an operator's first hour.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The documents whose commands operators copy.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut docs = vec![root.join("README.md")];
    let mut more: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    more.sort();
    docs.extend(more);
    docs
}

/// A shell line split into words: whitespace-separated, with '…' and "…" quoting.
fn words(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The arguments of each sirena invocation in `text`'s fenced code blocks, with the
/// line it starts on.
fn invocations(text: &str) -> Vec<(usize, Vec<String>)> {
    let mut found = Vec::new();
    let (mut fenced, mut pending, mut start) = (false, String::new(), 0);
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            continue;
        }
        if pending.is_empty() {
            start = i + 1;
        }
        match line.trim_end().strip_suffix('\\') {
            Some(head) => {
                pending.push_str(head);
                pending.push(' ');
                continue;
            }
            None => pending.push_str(line),
        }
        let full = std::mem::take(&mut pending);
        let full = full.trim_start().strip_prefix("$ ").unwrap_or(full.trim_start());
        // One command of a list, before any comment or redirection.
        for part in full.split("&&").flat_map(|p| p.split(';')) {
            let part = part.split(" #").next().unwrap_or_default();
            let part = part.split(['>', '|']).next().unwrap_or_default();
            let w = words(part);
            let args = if w.first().is_some_and(|t| t == "cargo") && w.get(1).is_some_and(|t| t == "run") {
                // `cargo run --release -- demo`: the binary's arguments follow `--`.
                w.iter().position(|t| t == "--").map(|dash| w[dash + 1..].to_vec())
            } else {
                // `sudo -u sirena env … sirena check-config`: the first names the user;
                // the binary is the last `sirena` (or `…/sirena`).
                w.iter().rposition(|t| t == "sirena" || t.ends_with("/sirena")).map(|at| w[at + 1..].to_vec())
            };
            let is_command = |c: &String| c != "env" && c.chars().all(|c| c.is_ascii_lowercase() || c == '-');
            if let Some(args) = args.filter(|a| a.first().is_some_and(is_command)) {
                found.push((start, args));
            }
        }
    }
    found
}

#[test]
fn every_documented_sirena_command_parses() {
    let mut checked = 0;
    let mut broken = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).expect("read doc");
        for (line, args) in invocations(&text) {
            let out = Command::new(env!("CARGO_BIN_EXE_sirena"))
                .args(&args)
                .arg("--help")
                .env_remove("RUST_LOG")
                .output()
                .expect("run sirena");
            checked += 1;
            if !out.status.success() {
                broken.push(format!(
                    "{}:{line}: sirena {}\n{}",
                    doc.display(),
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).lines().take(3).collect::<Vec<_>>().join("\n")
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "{} of {checked} documented commands do not parse:\n{}",
        broken.len(),
        broken.join("\n\n")
    );
    assert!(checked >= 20, "only {checked} documented commands found: is the extraction broken?");
}

#[test]
fn the_extraction_finds_what_an_operator_would_type() {
    let text = "```sh\n\
        $ sudo -u sirena env STATE_DIRECTORY=/var/lib/sirena sirena check-config --config /etc/sirena/config\n\
        ./target/release/sirena run --config config    # SIGTERM stops it\n\
        sirena regions import codifier.csv --config config \\\n  --alerts-in-ua \"a b.json\"\n\
        cargo build --release && target/release/sirena bench crash --kills 20\n\
        cargo run --release -- demo\n\
        sirena help-requests --format csv --config config > calls.csv\n\
        ```\nsirena outside a block is prose\n";
    let got: Vec<String> = invocations(text).into_iter().map(|(l, a)| format!("{l}: {}", a.join(" "))).collect();
    assert_eq!(
        got,
        [
            "2: check-config --config /etc/sirena/config",
            "3: run --config config",
            "4: regions import codifier.csv --config config --alerts-in-ua a b.json",
            "6: bench crash --kills 20",
            "7: demo",
            "8: help-requests --format csv --config config",
        ]
    );
}
