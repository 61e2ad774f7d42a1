//! `subsave man`: the manual page, from the same clap definitions as `--help`. clap_mangen
//! writes the top level (name, synopsis, options, the command list); this adds a section that
//! documents every subcommand with its own options, so the page is the whole reference.

use std::io::{self, Write};

use clap::CommandFactory;

use super::Cli;

/// Writes the manual page (roff) to `out`.
pub(super) fn render(out: &mut dyn Write) -> io::Result<()> {
    let command = Cli::command();
    let man = clap_mangen::Man::new(command.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    man.render_subcommands_section(out)?;
    writeln!(out, ".SH \"COMMAND REFERENCE\"")?;
    for sub in command.get_subcommands() {
        document(out, "subsave", sub)?;
    }
    man.render_extra_section(out)?;
    man.render_version_section(out)?;
    Ok(())
}

/// One subcommand (then its own subcommands): its full name, what it does, its usage and each
/// of its arguments with its help, default and choices.
fn document(out: &mut dyn Write, parent: &str, command: &clap::Command) -> io::Result<()> {
    if command.get_name() == "help" {
        return Ok(());
    }
    let name = format!("{parent} {}", command.get_name());
    writeln!(out, ".SS \"{}\"", escape(&name))?;
    if let Some(about) = command.get_long_about().or(command.get_about()) {
        writeln!(out, "{}", escape(&about.to_string()))?;
    }
    let usage = command.clone().bin_name(&name).render_usage().to_string();
    writeln!(out, ".PP")?;
    writeln!(
        out,
        "\\fB{}\\fR",
        escape(usage.trim_start_matches("Usage: "))
    )?;
    for arg in command
        .get_arguments()
        .filter(|a| !a.is_global_set() && !a.is_hide_set())
    {
        if matches!(arg.get_id().as_str(), "help" | "version") {
            continue;
        }
        writeln!(out, ".TP")?;
        writeln!(out, "\\fB{}\\fR", escape(&arg_label(arg)))?;
        let mut text = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        if !defaults.is_empty() {
            text.push_str(&format!(" [default: {}]", defaults.join(", ")));
        }
        let choices: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| v.get_name().to_owned())
            .collect();
        if !choices.is_empty() {
            text.push_str(&format!(" [possible values: {}]", choices.join(", ")));
        }
        writeln!(out, "{}", escape(text.trim()))?;
    }
    for sub in command.get_subcommands() {
        document(out, &name, sub)?;
    }
    Ok(())
}

/// How an argument is written: `--flag <VALUE>`, `-s, --flag`, or `<VALUE>` for a positional.
fn arg_label(arg: &clap::Arg) -> String {
    let value = arg
        .get_value_names()
        .map(|names| {
            names
                .iter()
                .map(|n| format!("<{n}>"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| format!("<{}>", arg.get_id().as_str().to_uppercase()));
    let takes_value = arg.get_num_args().is_none_or(|n| n.takes_values());
    match (arg.get_short(), arg.get_long()) {
        (None, None) => value,
        (short, long) => {
            let mut label = [
                short.map(|s| format!("-{s}")),
                long.map(|l| format!("--{l}")),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ");
            if takes_value
                && !matches!(
                    arg.get_action(),
                    clap::ArgAction::SetTrue | clap::ArgAction::Count
                )
            {
                label.push(' ');
                label.push_str(&value);
            }
            label
        }
    }
}

/// Text made safe for roff: backslashes and hyphens escaped, no line starting a request.
fn escape(text: &str) -> String {
    text.lines()
        .map(|line| {
            let line = line.replace('\\', "\\e").replace('-', "\\-");
            if line.starts_with(['.', '\'']) {
                format!("\\&{line}")
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
