//! The flags of the catalog's settings, made from the catalog: name,
//! value name, help with its default, and a check of the value's form.
//! They only collect text ([`FlagValues`]); the library resolves it.

use clap::builder::{PossibleValue, PossibleValuesParser};
use clap::{Arg, ArgMatches, Args, Command, FromArgMatches};

use crate::catalog::{self, Kind, Setting};
use crate::settings::FlagValues;

/// Adds a flag per setting to `cmd`.
fn augment(cmd: Command, settings: impl Iterator<Item = &'static Setting>) -> Command {
    settings.fold(cmd, |cmd, s| {
        let arg = Arg::new(s.key).long(s.flag).value_name(s.value_name()).help(s.help_text());
        let arg = match s.kind {
            Kind::Choice { names, aliases } => arg.value_parser(PossibleValuesParser::new(names.iter().map(|n| {
                let spellings = aliases.iter().filter(|(_, name)| name == n).map(|(alias, _)| *alias);
                PossibleValue::new(*n).aliases(spellings)
            }))),
            kind => arg.value_parser(move |text: &str| match kind.parse_text(text) {
                Some(_) => Ok(text.to_string()),
                None => Err(format!("expected {}", kind.expected())),
            }),
        };
        cmd.arg(arg)
    })
}

/// The values given for `settings`.
fn collect(matches: &ArgMatches, settings: impl Iterator<Item = &'static Setting>) -> FlagValues {
    let mut values = FlagValues::default();
    for s in settings {
        if let Ok(Some(text)) = matches.try_get_one::<String>(s.key) {
            values.set(s, text.clone());
        }
    }
    values
}

/// The flags of the settings a sink's commands take (`run`, `normalize`,
/// `load`): every catalog setting but those of reading input.
#[derive(Debug, Clone, Default)]
pub struct SinkFlags(pub FlagValues);

impl FromArgMatches for SinkFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(SinkFlags(collect(matches, catalog::sink_flags())))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for SinkFlags {
    fn augment_args(cmd: Command) -> Command {
        augment(cmd, catalog::sink_flags())
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

/// The flags of the settings of reading input (`run`, `normalize`).
#[derive(Debug, Clone, Default)]
pub struct ReadFlags(pub FlagValues);

impl FromArgMatches for ReadFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(ReadFlags(collect(matches, catalog::read_flags())))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for ReadFlags {
    fn augment_args(cmd: Command) -> Command {
        augment(cmd, catalog::read_flags())
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use crate::catalog::SETTINGS;
    use crate::cli::Cli;

    /// `host run --help` shows every setting with the catalog's help and
    /// default; `host load --help` every one but those of reading input.
    #[test]
    fn help_is_the_catalog() {
        let mut cli = Cli::command();
        let run = cli.find_subcommand_mut("run").expect("run").render_long_help().to_string();
        let flat = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        let run = flat(&run);
        for s in SETTINGS {
            assert!(run.contains(&format!("--{} <{}>", s.flag, s.value_name())), "--{} in run --help", s.flag);
            assert!(run.contains(&flat(&s.help_text())), "help of --{}: {}", s.flag, s.help_text());
        }
        let load = flat(&cli.find_subcommand_mut("load").expect("load").render_long_help().to_string());
        for s in crate::catalog::sink_flags() {
            assert!(load.contains(&format!("--{} <", s.flag)), "--{} in load --help", s.flag);
        }
        assert!(!load.contains("--max-record-bytes"), "load reads no input");
    }
}
