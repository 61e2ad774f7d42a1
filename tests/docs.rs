//! The docs match the binary: every `subsave …` command and flag, every config key and every
//! `SUBSAVE_…` variable named in README.md, docs/ and the config files' comments exists in this
//! build. Names are read from code (backtick spans and fenced blocks), so prose is left alone.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The documents the check reads: the README, everything under docs/, the config examples
/// (their comments name keys and commands).
fn documents() -> Vec<PathBuf> {
    let mut files = vec![
        root().join("README.md"),
        root().join("ARCHITECTURE.md"),
        root().join("config/default.toml"),
        root().join("config/production.example.toml"),
    ];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files
}

/// The code in a document: each backtick span, and each line of a fenced block; in TOML, the
/// backtick spans of its comments and the commands they show indented (`#   subsave …`).
fn code_fragments(path: &Path, text: &str) -> Vec<String> {
    let toml = path.extension().is_some_and(|e| e == "toml");
    let mut fragments = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            fragments.push(line.to_owned());
            continue;
        }
        if toml
            && let Some(shown) = line.trim_start().strip_prefix("#  ")
            && shown.trim_start().starts_with("subsave ")
        {
            fragments.push(shown.to_owned());
        }
        let mut parts = line.split('`');
        parts.next();
        while let Some(code) = parts.next() {
            fragments.push(code.to_owned());
            parts.next();
        }
    }
    fragments
}

/// Each `subsave …` invocation in a fragment, as its words up to a pipe, a redirect, a comment
/// or the end.
fn invocations(fragment: &str) -> Vec<Vec<String>> {
    let words: Vec<&str> = fragment.split_whitespace().collect();
    let mut found = Vec::new();
    for (i, word) in words.iter().enumerate() {
        if *word != "subsave" && !word.ends_with("/subsave") {
            continue;
        }
        let rest: Vec<String> = words[i + 1..]
            .iter()
            .take_while(|w| {
                !matches!(**w, "|" | "&&" | ";" | ">" | "2>&1" | "||")
                    && !w.starts_with('#')
                    && !w.contains('…')
            })
            .map(|w| {
                w.trim_matches(|c| c == '(' || c == ')' || c == ',')
                    .to_owned()
            })
            .collect();
        if !rest.is_empty() {
            found.push(rest);
        }
    }
    found
}

/// What is wrong with one invocation (`None`: it names a real command with real flags).
fn check_invocation(words: &[String]) -> Option<String> {
    let top = subsave::cli::Cli::command();
    let globals: BTreeSet<String> = top
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .chain(["help".to_owned(), "version".to_owned()])
        .collect();
    let mut command = &top;
    let mut path = vec!["subsave".to_owned()];
    let mut i = 0;
    // Global options may come first, with their values.
    while i < words.len() && words[i].starts_with("--") {
        let flag = words[i].trim_start_matches("--");
        let name = flag.split('=').next().unwrap_or(flag);
        if !globals.contains(name) {
            return Some(format!("unknown global option --{name}"));
        }
        i += if flag.contains('=') { 1 } else { 2 };
    }
    let first = words.get(i)?;
    // Only lowercase words can be commands; anything else (a placeholder, a value) ends here.
    if !first.chars().all(|c| c.is_ascii_lowercase() || c == '-') || first.starts_with('-') {
        return None;
    }
    while let Some(word) = words.get(i) {
        match command.find_subcommand(word) {
            Some(sub) => {
                command = sub;
                path.push(word.clone());
                i += 1;
            }
            None if command.has_subcommands() => {
                return Some(format!("{} has no command \"{word}\"", path.join(" ")));
            }
            None => break,
        }
    }
    let known: BTreeSet<String> = command
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .chain(globals)
        .collect();
    for word in &words[i..] {
        let Some(flag) = word.strip_prefix("--") else {
            continue;
        };
        let name = flag.split('=').next().unwrap_or(flag);
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
            continue;
        }
        if !known.contains(name) {
            return Some(format!("{} has no option --{name}", path.join(" ")));
        }
    }
    None
}

/// Every config key this build accepts, as the loader itself lists them: a file with an
/// unknown key in a section is refused with the section's keys ("expected one of: …").
fn config_keys() -> BTreeSet<String> {
    let dir = std::env::temp_dir().join(format!("subsave-docs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut keys = BTreeSet::new();
    let mut sections: Vec<String> = SECTIONS.iter().map(|s| s.to_string()).collect();
    let mut i = 0;
    while let Some(section) = sections.get(i).cloned() {
        i += 1;
        let file = dir.join("probe.toml");
        std::fs::write(&file, format!("[{section}]\nnot_a_key_anywhere = 1\n")).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_subsave"))
            .current_dir(&dir)
            .args(["--config", file.to_str().unwrap(), "check-config"])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        let listed = said
            .split("expected one of: ")
            .nth(1)
            .unwrap_or_else(|| panic!("[{section}]: no list of keys in: {said}"));
        keys.insert(section.clone());
        for key in listed.trim().split(", ") {
            let full = format!("{section}.{key}");
            // A key that is itself a table has keys of its own.
            if ["smtp", "delivery", "stripe", "accounts"].contains(&key) {
                sections.push(full.clone());
            }
            keys.insert(full);
        }
    }
    for field in ["name", "url", "secret", "secret_file", "events"] {
        keys.insert(format!("webhooks.endpoints.{field}"));
    }
    let _ = std::fs::remove_dir_all(&dir);
    keys
}

const SECTIONS: [&str; 15] = [
    "database",
    "mail",
    "engine",
    "reminders",
    "http",
    "daemon",
    "outbox",
    "finance",
    "fulfillment",
    "web",
    "admin",
    "notices",
    "api",
    "webhooks",
    "payments",
];

/// The config keys a fragment names: `section.key…` tokens and `SUBSAVE_SECTION__KEY`
/// variables, normalized to dotted keys (`[0]` indexes dropped).
fn named_keys(fragment: &str) -> Vec<String> {
    let mut found = Vec::new();
    for token in fragment.split(|c: char| !(c.is_ascii_alphanumeric() || "._[]".contains(c))) {
        if let Some(var) = token.strip_prefix("SUBSAVE_") {
            if var.contains("__") {
                found.push(var.to_ascii_lowercase().replace("__", "."));
            }
            continue;
        }
        let token = token.trim_end_matches('.');
        let Some((section, rest)) = token.split_once('.') else {
            continue;
        };
        // File names (`mail.rs`, `api.sh`, `finance.md`) and hosts are not keys.
        let last = token
            .trim_end_matches([']', ')'])
            .rsplit('.')
            .next()
            .unwrap_or_default();
        if [
            "rs", "sh", "md", "py", "toml", "json", "yml", "yaml", "sql", "com", "db",
        ]
        .contains(&last)
        {
            continue;
        }
        if SECTIONS.contains(&section)
            && !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._[]".contains(c))
        {
            let mut key = token.to_owned();
            while let (Some(open), Some(close)) = (key.find('['), key.find(']')) {
                key.replace_range(open..=close, "");
            }
            found.push(key);
        }
    }
    found
}

#[test]
fn every_command_flag_and_config_key_the_docs_name_exists() {
    let keys = config_keys();
    let mut wrong = Vec::new();
    let mut commands = 0;
    let mut named = 0;
    for path in documents() {
        let text = std::fs::read_to_string(&path).unwrap();
        let shown = path.strip_prefix(root()).unwrap().display().to_string();
        if path.extension().is_some_and(|e| e == "toml") {
            for key in text.lines().flat_map(named_keys) {
                named += 1;
                if !keys.contains(&key) {
                    wrong.push(format!("{shown}: config key `{key}` does not exist"));
                }
            }
        }
        for fragment in code_fragments(&path, &text) {
            for words in invocations(&fragment) {
                commands += 1;
                if let Some(problem) = check_invocation(&words) {
                    wrong.push(format!("{shown}: `subsave {}`: {problem}", words.join(" ")));
                }
            }
            // ARCHITECTURE.md names tables and columns (`payments.order_id`), not config keys.
            let keys_named = if shown == "ARCHITECTURE.md" {
                Vec::new()
            } else {
                named_keys(&fragment)
            };
            for key in keys_named {
                named += 1;
                if !keys.contains(&key) {
                    wrong.push(format!("{shown}: config key `{key}` does not exist"));
                }
            }
        }
    }
    assert!(
        commands > 50 && named > 50,
        "{commands} commands, {named} keys read"
    );
    assert!(
        wrong.is_empty(),
        "the docs name what the binary lacks:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_checks_catch_what_does_not_exist() {
    let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        check_invocation(&words("orders export --from 2026-01-01")),
        None
    );
    assert_eq!(
        check_invocation(&words("--now 2026-01-01T00:00:00Z tick --dry-run")),
        None
    );
    assert!(check_invocation(&words("orders exprt")).is_some());
    assert!(check_invocation(&words("orders export --form 2026-01-01")).is_some());
    assert!(check_invocation(&words("--nowish x tick")).is_some());
    assert_eq!(
        invocations("SUBSAVE_X=1 subsave subs list --json | head -1"),
        vec![words("subs list --json")]
    );
    assert_eq!(
        named_keys(
            "set SUBSAVE_MAIL__SMTP__PORT=2525 or mail.delivery.lease_secs, webhooks.endpoints[0].url"
        ),
        vec![
            "mail.smtp.port",
            "mail.delivery.lease_secs",
            "webhooks.endpoints.url"
        ]
    );
    let keys = config_keys();
    assert!(keys.contains("mail.delivery.lease_secs") && !keys.contains("mail.delivery.lease"));
}
