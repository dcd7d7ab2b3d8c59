//! The configuration file: option defaults of the user's own, in TOML,
//! below the environment and the command line (flag > `SCRIPTSCRAPE_*`
//! variable > file > built-in default).
//!
//! The file's keys are the long option names (`concurrency`,
//! `user-agent`), looked up in the clap definition itself rather than in a
//! list of our own, so that an option added to [`crate::cli`] can be set in
//! the file with no code here. Each value is checked by that option's own
//! parser before anything runs, and then laid under clap as the option's
//! default value: clap's precedence (command line, then environment, then
//! default) is then exactly the one wanted, and the process environment,
//! which children such as a browser inherit, is never touched.
//!
//! Which keys apply where: a top-level key is an option of the scrape, and
//! also sets the option of that name of every other command that reads it
//! from a `SCRIPTSCRAPE_*` variable: the same commands the variable would
//! apply to (`concurrency` for `work`, `redis` for the queue's commands).
//! A table named after a command (`[work]`, `[diff]`) holds that command's
//! own options and wins over the top-level keys for it; options that read
//! no variable (`diff`'s, `inventory`'s) can be set only there, since the
//! same name means another thing elsewhere (`diff --output` is not the
//! scripts output).

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use clap::builder::ArgAction;
use clap::parser::ValueSource;
use toml::de::{DeTable, DeValue};

/// The environment variable that names the configuration file; empty, no
/// file is read.
pub const CONFIG_VAR: &str = "SCRIPTSCRAPE_CONFIG";

/// Largest configuration file read: a settings file is a few hundred
/// bytes, so anything near this is the wrong file.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// The options that cannot be set in the file, and why.
const NOT_IN_FILE: &[(&str, &str)] = &[
    ("config", "a file cannot name another file"),
    ("no-config", "it says whether the file is read"),
    ("print-config", "it is a request, not a setting"),
    ("generate", "it is a request, not a setting"),
    ("help", "it is a request, not a setting"),
    ("version", "it is a request, not a setting"),
];

/// Words that make a header name secret-bearing (`Authorization`,
/// `PRIVATE-TOKEN`, `X-Goog-Api-Key`, `Cookie`): `--print-config` masks
/// such a header's value. Matched anywhere in the name, ignoring case.
const SECRET_HEADER_WORDS: &[&str] = &[
    "token",
    "key",
    "secret",
    "auth",
    "session",
    // password, passwd, x-pass
    "pass",
    "cookie",
    // signature, x-sig
    "sig",
    "credential",
    "jwt",
    "bearer",
    "csrf",
    "xsrf",
];

/// How the configuration file was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chosen {
    /// `--config FILE`.
    Flag,
    /// `SCRIPTSCRAPE_CONFIG=FILE`.
    Env,
    /// `$XDG_CONFIG_HOME/scriptscrape/config.toml` (or under
    /// `$HOME/.config`), which exists.
    Default,
}

/// The configuration file to read, and how it was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub path: PathBuf,
    /// Why this one.
    pub chosen: Chosen,
}

/// What is wrong with a configuration file: one line, naming the file and,
/// where there is one, the line and key.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// The line (from 1), when the fault is on one.
    pub line: Option<usize>,
    /// What is wrong, and with which key.
    pub message: String,
}

/// Which configuration file the command line and the environment name:
/// `--no-config` none; `--config FILE`; `SCRIPTSCRAPE_CONFIG` (empty:
/// none); else the default file when it exists. Read before clap parses,
/// since the file supplies the defaults clap parses with; clap's own
/// reading of `--config` is checked against this one afterwards.
pub fn locate(args: &[OsString], env: &dyn Fn(&str) -> Option<OsString>) -> Option<Location> {
    let mut flag = None;
    let mut no_config = false;
    // Options only: after "--" everything is an INPUT.
    let mut words = args.iter().skip(1).take_while(|a| a.as_os_str() != "--");
    while let Some(word) = words.next() {
        let text = word.to_string_lossy();
        if text == "--no-config" {
            no_config = true;
        } else if text == "--config" {
            flag = words.next().cloned();
        } else if let Some(path) = text.strip_prefix("--config=") {
            flag = Some(OsString::from(path));
        }
    }
    if no_config {
        return None;
    }
    if let Some(path) = flag {
        return Some(Location {
            path: PathBuf::from(path),
            chosen: Chosen::Flag,
        });
    }
    if let Some(path) = env(CONFIG_VAR) {
        // Set and empty: no file, as RIPGREP_CONFIG_PATH.
        return (!path.is_empty()).then(|| Location {
            path: PathBuf::from(path),
            chosen: Chosen::Env,
        });
    }
    let path = default_path(env)?;
    // `exists` follows links: a dangling link is no file, but a directory
    // or an unreadable file there is, and is reported.
    path.exists().then_some(Location {
        path,
        chosen: Chosen::Default,
    })
}

/// `$XDG_CONFIG_HOME/scriptscrape/config.toml`, or under `$HOME/.config`
/// when that is unset, empty or relative (the XDG base directory
/// specification says to ignore a relative one).
pub fn default_path(env: &dyn Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let absolute = |name| env(name).map(PathBuf::from).filter(|p| p.is_absolute());
    let base =
        absolute("XDG_CONFIG_HOME").or_else(|| absolute("HOME").map(|h| h.join(".config")))?;
    Some(base.join("scriptscrape").join("config.toml"))
}

/// A configuration file's text.
#[derive(Clone, Debug)]
pub struct ConfigFile {
    path: PathBuf,
    text: String,
}

impl ConfigFile {
    /// Reads the file: a directory, an unreadable file, a file larger than
    /// 1 MiB or one that is not UTF-8 is an error naming it.
    pub fn read(path: &Path) -> Result<ConfigFile, FileError> {
        let fail = |line, message: String| FileError {
            path: path.to_path_buf(),
            line,
            message,
        };
        let io_fail = |e: std::io::Error| {
            let why = crate::error::without_os_error_numbers(&e.to_string());
            fail(None, format!("cannot read the configuration file: {why}"))
        };
        if path.is_dir() {
            return Err(fail(
                None,
                "is a directory, not a configuration file".to_owned(),
            ));
        }
        let file = std::fs::File::open(path).map_err(io_fail)?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io_fail)?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(fail(
                None,
                "larger than 1 MiB: not a configuration file".to_owned(),
            ));
        }
        match String::from_utf8(bytes) {
            Ok(text) => Ok(ConfigFile {
                path: path.to_path_buf(),
                text,
            }),
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let line = line_of(e.as_bytes(), at);
                Err(fail(
                    Some(line),
                    "not UTF-8 text (TOML is UTF-8)".to_owned(),
                ))
            }
        }
    }

    /// A file's text as if read from `path` (for tests and callers that
    /// hold the text already).
    pub fn from_text(path: impl Into<PathBuf>, text: impl Into<String>) -> ConfigFile {
        ConfigFile {
            path: path.into(),
            text: text.into(),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The line (from 1) of byte `offset` in `text`.
fn line_of(text: &[u8], offset: usize) -> usize {
    text[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// One option the file sets, for one command.
#[derive(Clone, Debug)]
struct Entry {
    /// The subcommand, or `None` for the scrape.
    command: Option<String>,
    /// clap's id of the option.
    id: String,
    /// The values, as the command line would give them; a flag's is
    /// "true".
    values: Vec<String>,
    /// The line of the key.
    line: usize,
    /// Set in the command's own table, which wins over a top-level key.
    in_table: bool,
}

/// The settings of a configuration file, checked against a command-line
/// definition, ready to be laid under it.
#[derive(Clone, Debug)]
pub struct Layer {
    path: PathBuf,
    entries: Vec<Entry>,
    /// The keys holding secrets, for the permissions warning.
    secrets: Vec<String>,
}

/// What is known of an option of a command.
struct Found<'a> {
    arg: &'a clap::Arg,
    command: Option<&'a str>,
}

impl Layer {
    /// Checks every key and value of `file` against `command` (the whole
    /// command-line definition): an unknown key, a key that cannot be set
    /// in a file, a value of the wrong type or one the option's parser
    /// refuses is an error naming the file, line and key.
    pub fn new(file: &ConfigFile, command: &clap::Command) -> Result<Layer, FileError> {
        let mut built = command.clone();
        built.build();
        let table = DeTable::parse(&file.text).map_err(|e| {
            let line = e.span().map(|s| line_of(file.text.as_bytes(), s.start));
            // The parser's message may span lines (a snippet and a caret):
            // its first line says what is wrong.
            let why = e.message().lines().next().unwrap_or("").trim();
            FileError {
                path: file.path.clone(),
                line,
                message: format!("invalid TOML: {why}"),
            }
        })?;
        let mut layer = Layer {
            path: file.path.clone(),
            entries: Vec::new(),
            secrets: Vec::new(),
        };
        let subcommand_names: Vec<&str> = built.get_subcommands().map(|s| s.get_name()).collect();
        for (key, value) in table.get_ref() {
            let line = line_of(file.text.as_bytes(), key.span().start);
            let name = key.get_ref().as_ref();
            let fail = |message: String| FileError {
                path: file.path.clone(),
                line: Some(line),
                message,
            };
            if let DeValue::Array(items) = value.get_ref()
                && !items.is_empty()
                && items
                    .iter()
                    .all(|i| matches!(i.get_ref(), DeValue::Table(_)))
                && built.find_subcommand(name).is_some()
            {
                return Err(fail(format!(
                    "[[{name}]]: an array of tables; use [{name}]"
                )));
            }
            if let DeValue::Table(inner) = value.get_ref() {
                if built.find_subcommand(name).is_none() && find_top_level(&built, name).is_ok() {
                    return Err(fail(format!(
                        "{name}: a table is not a value; give a string or a list"
                    )));
                }
                let Some(sub) = built.find_subcommand(name) else {
                    let guess = suggest(name, subcommand_names.iter().copied());
                    return Err(fail(format!(
                        "unknown table [{name}]{}: tables are commands ({})",
                        guess
                            .map(|g| format!(" (did you mean [{g}]?)"))
                            .unwrap_or_default(),
                        subcommand_names.join(", ")
                    )));
                };
                for (key, value) in inner {
                    let line = line_of(file.text.as_bytes(), key.span().start);
                    let inner_key = key.get_ref().as_ref();
                    let found = find_option(sub, inner_key).map_err(|message| FileError {
                        path: file.path.clone(),
                        line: Some(line),
                        message: format!("[{name}] {message}"),
                    })?;
                    let found = [Found {
                        arg: found,
                        command: Some(sub.get_name()),
                    }];
                    layer.add(&built, file, &found, inner_key, value, line, true)?;
                }
                continue;
            }
            let found = find_top_level(&built, name).map_err(fail)?;
            layer.add(&built, file, &found, name, value, line, false)?;
        }
        Ok(layer)
    }

    /// Records `key = value` for each option in `found`, checked.
    #[allow(clippy::too_many_arguments)] // One call site each; a struct would only rename them.
    fn add(
        &mut self,
        built: &clap::Command,
        file: &ConfigFile,
        found: &[Found<'_>],
        key: &str,
        value: &toml::Spanned<DeValue<'_>>,
        line: usize,
        in_table: bool,
    ) -> Result<(), FileError> {
        let value_line = line_of(file.text.as_bytes(), value.span().start);
        let table = match found.first().and_then(|f| f.command).filter(|_| in_table) {
            Some(name) => format!("[{name}] "),
            None => String::new(),
        };
        let fail = |message: String| FileError {
            path: file.path.clone(),
            line: Some(value_line),
            message: format!("{table}{key}: {message}"),
        };
        for found in found {
            let arg = found.arg;
            let command = match found.command {
                Some(name) => built.find_subcommand(name).unwrap_or(built),
                None => built,
            };
            if matches!(value.get_ref(), DeValue::Boolean(false))
                && let Some(opposite) = opposite_flag(command, arg)
            {
                // `robots = false` would read as "no robots.txt" yet do
                // nothing (a crawl reads it unless told not to).
                return Err(fail(format!(
                    "false does not mean {opposite}: write {opposite} = true, or leave {key} out"
                )));
            }
            let values = values_for(arg, value.get_ref()).map_err(&fail)?;
            let Some(values) = values else {
                // A flag set to false: left off, as when absent.
                continue;
            };
            let may_hold_secrets = matches!(
                arg.get_id().as_str(),
                "user" | "cookies" | "proxy" | "redis" | "headers"
            ) || arg.is_hide_env_values_set();
            if may_hold_secrets && values.iter().any(|v| v.contains("***")) {
                // --print-config's output read back: the mask would be
                // sent as the password or cookie.
                return Err(fail(
                    "holds ***, where --print-config masked a secret: put the secret back"
                        .to_owned(),
                ));
            }
            check(command, arg, &values).map_err(&fail)?;
            for v in &values {
                crate::config::check_value(arg.get_id().as_str(), v).map_err(&fail)?;
            }
            if is_secret(arg, &values) && !self.secrets.iter().any(|s| s == key) {
                self.secrets.push(key.to_owned());
            }
            self.entries.push(Entry {
                command: found.command.map(str::to_owned),
                id: arg.get_id().as_str().to_owned(),
                values,
                line,
                in_table,
            });
        }
        Ok(())
    }

    /// The file the settings came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The keys whose values are secrets (passwords, cookies, tokens), for
    /// a warning when others can read the file.
    pub fn secret_keys(&self) -> &[String] {
        &self.secrets
    }

    /// The entry that sets option `id` of `command` (`None`: the scrape):
    /// the command's own table's, else the top-level key's.
    fn entry(&self, command: Option<&str>, id: &str) -> Option<&Entry> {
        let mine = |e: &&Entry| e.command.as_deref() == command && e.id == id;
        let in_table = self.entries.iter().filter(mine).find(|e| e.in_table);
        in_table.or_else(|| self.entries.iter().find(mine))
    }

    /// The line that sets option `id` of `command`, if the file does.
    pub fn line_of(&self, command: Option<&str>, id: &str) -> Option<usize> {
        self.entry(command, id).map(|e| e.line)
    }

    /// The values the file gives option `id` of `command` (a flag's is
    /// "true"), if it sets it.
    pub fn values_of(&self, command: Option<&str>, id: &str) -> Option<&[String]> {
        self.entry(command, id).map(|e| e.values.as_slice())
    }

    /// Forgets the file's value for option `id` of `command` (`None`: the
    /// scrape): one that an option given otherwise conflicts with.
    pub fn remove(&mut self, command: Option<&str>, id: &str) {
        self.entries
            .retain(|e| !(e.command.as_deref() == command && e.id == id));
    }

    /// `command` with the file's values as the defaults of the options they
    /// set.
    pub fn apply(&self, mut command: clap::Command) -> clap::Command {
        // Top-level keys first, so that a command's own table wins.
        let order = self
            .entries
            .iter()
            .filter(|e| !e.in_table)
            .chain(self.entries.iter().filter(|e| e.in_table));
        for entry in order {
            let set = |arg: clap::Arg| {
                let takes_value = !matches!(
                    arg.get_action(),
                    ArgAction::SetTrue | ArgAction::SetFalse | ArgAction::Count
                );
                // A file's value is the user's, not the program's: --help
                // keeps showing the built-in default's absence rather than
                // it (and never a secret). The file satisfies a required
                // option, as its variable does.
                let arg = arg
                    .default_values(
                        entry
                            .values
                            .iter()
                            .map(|v| clap::builder::OsStr::from(v.clone())),
                    )
                    .required(false);
                if takes_value {
                    arg.hide_default_value(true)
                } else {
                    arg
                }
            };
            command = match &entry.command {
                None => command.mut_arg(&entry.id, set),
                Some(name) => command.mut_subcommand(name, |sub| sub.mut_arg(&entry.id, set)),
            };
        }
        command
    }
}

/// The options a top-level key sets: the scrape's of that name, and every
/// other command's of that name that reads a `SCRIPTSCRAPE_*` variable.
fn find_top_level<'a>(built: &'a clap::Command, key: &str) -> Result<Vec<Found<'a>>, String> {
    not_in_file(key)?;
    let mut found: Vec<Found<'a>> = long_arg(built, key)
        .map(|arg| Found { arg, command: None })
        .into_iter()
        .collect();
    let mut tables_only = Vec::new();
    for sub in built.get_subcommands() {
        if let Some(arg) = long_arg(sub, key) {
            if arg.get_env().is_some() {
                found.push(Found {
                    arg,
                    command: Some(sub.get_name()),
                });
            } else {
                tables_only.push(sub.get_name());
            }
        }
    }
    if !found.is_empty() {
        return Ok(found);
    }
    if !tables_only.is_empty() {
        let tables: Vec<String> = tables_only.iter().map(|t| format!("[{t}]")).collect();
        return Err(format!(
            "{key:?} is an option of {} only: set it under {}",
            tables_only.join(" and "),
            tables.join(" or ")
        ));
    }
    let every = std::iter::once(built)
        .chain(built.get_subcommands())
        .flat_map(|c| c.get_arguments())
        .filter_map(|a| a.get_long());
    Err(unknown(key, every))
}

/// The option `key` of `command`, or why there is none.
fn find_option<'a>(command: &'a clap::Command, key: &str) -> Result<&'a clap::Arg, String> {
    not_in_file(key)?;
    long_arg(command, key).ok_or_else(|| {
        let every = command.get_arguments().filter_map(|a| a.get_long());
        unknown(key, every)
    })
}

fn not_in_file(key: &str) -> Result<(), String> {
    match NOT_IN_FILE.iter().find(|(k, _)| *k == key) {
        Some((_, why)) => Err(format!(
            "{key:?} cannot be set in a configuration file: {why}"
        )),
        None => Ok(()),
    }
}

fn long_arg<'a>(command: &'a clap::Command, key: &str) -> Option<&'a clap::Arg> {
    command
        .get_arguments()
        .find(|a| a.get_long() == Some(key) && !a.is_positional())
}

/// "unknown key", with the nearest option name when one is near.
fn unknown<'a>(key: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    let candidates = candidates.filter(|c| NOT_IN_FILE.iter().all(|(k, _)| k != c));
    match suggest(key, candidates) {
        Some(guess) => format!("unknown key {key:?} (did you mean {guess:?}?)"),
        None => format!("unknown key {key:?}: keys are long option names, as in --help"),
    }
}

/// The candidate most like `key`, if any is like it: `user_agent` is
/// `user-agent`, and a typo of one or two letters is caught.
fn suggest<'a>(key: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let dashed = key.replace('_', "-").to_ascii_lowercase();
    candidates
        .map(|c| (strsim::damerau_levenshtein(&dashed, c), c))
        .filter(|&(distance, c)| distance <= 2.max(c.len() / 4))
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, c)| c)
}

/// The flag that says the opposite of flag `arg` (`no-robots` for
/// `robots`, and the other way round), if `command` has one.
fn opposite_flag(command: &clap::Command, arg: &clap::Arg) -> Option<String> {
    if !matches!(arg.get_action(), ArgAction::SetTrue) {
        return None;
    }
    let long = arg.get_long()?;
    let opposite = match long.strip_prefix("no-") {
        Some(rest) => rest.to_owned(),
        None => format!("no-{long}"),
    };
    long_arg(command, &opposite)
        .filter(|o| matches!(o.get_action(), ArgAction::SetTrue))
        .map(|_| opposite)
}

/// The command-line values `value` stands for as option `arg`'s, `None`
/// for a flag set to false, or why the type is wrong.
fn values_for(arg: &clap::Arg, value: &DeValue<'_>) -> Result<Option<Vec<String>>, String> {
    match arg.get_action() {
        ArgAction::SetTrue | ArgAction::SetFalse => match value {
            DeValue::Boolean(true) => Ok(Some(vec!["true".to_owned()])),
            DeValue::Boolean(false) => Ok(None),
            other => Err(format!("expected true or false, not {}", type_name(other))),
        },
        ArgAction::Count => match value {
            DeValue::Integer(_) => scalar(value).map(|v| Some(vec![v])),
            other => Err(format!(
                "expected how many times, a whole number (verbose = 2 is -vv), not {}",
                type_name(other)
            )),
        },
        _ if matches!(value, DeValue::Boolean(_))
            && !arg
                .get_possible_values()
                .iter()
                .any(|p| p.matches("true", true)) =>
        {
            // `output = false` would be a file named "false".
            Err("takes a value, not true/false".to_owned())
        }
        ArgAction::Append => match value {
            DeValue::Array(items) => items
                .iter()
                .map(|item| scalar(item.get_ref()))
                .collect::<Result<Vec<_>, _>>()
                .map(|v| (!v.is_empty()).then_some(v)),
            other => scalar(other).map(|v| Some(vec![v])),
        },
        _ => match value {
            DeValue::Array(_) => Err("takes one value, not a list".to_owned()),
            other => scalar(other).map(|v| Some(vec![v])),
        },
    }
}

/// A string, number or boolean as the command line would spell it.
fn scalar(value: &DeValue<'_>) -> Result<String, String> {
    match value {
        DeValue::String(s) => Ok(s.to_string()),
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix())
            .map(|n| n.to_string())
            .map_err(|_| "the number is too large".to_owned()),
        DeValue::Float(f) => Ok(f.as_str().to_owned()),
        DeValue::Boolean(b) => Ok(b.to_string()),
        other => Err(format!(
            "expected a string or a number, not {}",
            type_name(other)
        )),
    }
}

fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

/// Checks `values` with `arg`'s own parser, as clap would on `command`'s
/// command line, and words the refusal as clap does there.
fn check(command: &clap::Command, arg: &clap::Arg, values: &[String]) -> Result<(), String> {
    match arg.get_action() {
        // A TOML boolean, checked by `values_for`.
        ArgAction::SetTrue | ArgAction::SetFalse => return Ok(()),
        // Given as -vv on a command line, as a number in the variable.
        ArgAction::Count => {
            return match values.first().map(|v| v.parse::<u8>()) {
                Some(Ok(_)) => Ok(()),
                _ => Err("expected how many times, from 0 to 255".to_owned()),
            };
        }
        _ => {}
    }
    let Some(long) = arg.get_long() else {
        return Ok(());
    };
    // The option alone on a command line of its command, with nothing
    // required and no variable read: only its own values can fail. (Not
    // through a default value: clap's debug assertions panic on a default
    // its parser refuses.)
    let probe = command
        .clone()
        .mut_args(|a| a.required(false).env(None::<&str>));
    let mut line: Vec<OsString> = vec![OsString::from(command.get_name())];
    line.extend(
        values
            .iter()
            .map(|v| OsString::from(format!("--{long}={v}"))),
    );
    match probe.try_get_matches_from(line) {
        Ok(_) => Ok(()),
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::MissingRequiredArgument
                    | ErrorKind::ArgumentConflict
                    | ErrorKind::MissingSubcommand
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                return Ok(());
            }
            Err(first_paragraph(
                &without_secret_value(command, e).render().to_string(),
            ))
        }
    }
}

/// clap's refusal of a value of an option that holds secrets (`-u`,
/// `-b`), reworded so as not to show the value: clap's own message quotes
/// it (`invalid value 'sid=SEC;RET' for '--cookie …'`). The option and the
/// parser's reason stay; any other error is returned as it is.
pub fn without_secret_value(command: &clap::Command, err: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        err.kind(),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue
    ) {
        return err;
    }
    let Some(ContextValue::String(shown)) = err.get(ContextKind::InvalidArg) else {
        return err;
    };
    // clap names the option as "--cookie <NAME=VALUE|FILE>".
    let long = shown.split_whitespace().next().unwrap_or_default();
    let secret = std::iter::once(command)
        .chain(command.get_subcommands())
        .flat_map(|c| c.get_arguments())
        .any(|a| {
            a.is_hide_env_values_set()
                && a.get_long()
                    .is_some_and(|l| long.strip_prefix("--") == Some(l))
        });
    if !secret {
        return err;
    }
    let why = std::error::Error::source(&err)
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    clap::Error::raw(
        err.kind(),
        format!("invalid value for '{shown}' (not shown: it is a secret){why}\n"),
    )
}

/// clap's message on one line: its first paragraph, without "error: ".
pub fn first_paragraph(text: &str) -> String {
    let words: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let joined = words.join(" ");
    joined.strip_prefix("error: ").unwrap_or(&joined).to_owned()
}

/// Whether option `arg` set to `values` holds a secret.
fn is_secret(arg: &clap::Arg, values: &[String]) -> bool {
    let id = arg.get_id().as_str();
    if arg.is_hide_env_values_set() && !is_masked_by_form(id) {
        return true;
    }
    values.iter().any(|v| masked(id, v) != *v)
}

/// `value` of option `id` as `--print-config` shows it: passwords,
/// cookie values and credentials in headers and URLs masked.
pub fn masked(id: &str, value: &str) -> String {
    match id {
        // A user name alone is often a token (-u ghp_TOKEN:x), and the
        // outputs show a URL's user info as *** too.
        "user" => "***".to_owned(),
        // One or several pairs (a=1; b=2), each value masked.
        "cookies" if value.contains('=') => value
            .split(';')
            .map(|pair| match pair.trim().split_once('=') {
                Some((name, _)) => format!("{name}=***"),
                None => "***".to_owned(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        // -b FILE: a file name, which is no secret.
        "cookies" => value.to_owned(),
        "proxy" => crate::proxy::shown(value).into_owned(),
        // A Unix socket URL's pass= and password= too, as `jobs` shows it.
        "redis" => crate::queue::shown_redis_url(value),
        "headers" => match value.split_once(':') {
            // A name with a space is no header name: where it really ends
            // is unknown ("Authorization Basic user:pass").
            Some((name, _)) if name.trim().contains(char::is_whitespace) => "***".to_owned(),
            Some((name, _)) if is_secret_header(name) => format!("{name}: ***"),
            Some(_) => value.to_owned(),
            // Malformed ("Authorization Bearer x"): where the name ends
            // is unknown, so nothing of it is shown.
            None => "***".to_owned(),
        },
        _ => value.to_owned(),
    }
}

/// Whether a header of this name carries a credential, by the words of
/// [`SECRET_HEADER_WORDS`].
pub fn is_secret_header(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    SECRET_HEADER_WORDS.iter().any(|w| name.contains(w))
}

/// Where an option's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The command line.
    Flag,
    /// The named environment variable.
    Env(String),
    /// The configuration file, at this line.
    File(PathBuf, usize),
    /// The built-in default.
    Default,
    /// Not set at all.
    Unset,
}

/// One line of `--print-config`.
#[derive(Clone, Debug)]
pub struct Setting {
    /// The long option name.
    pub key: String,
    /// The value, secrets masked, as TOML; `None` when unset.
    pub value: Option<String>,
    /// Where it comes from.
    pub source: Source,
}

/// The settings a command runs with and where each comes from: what
/// `--print-config` prints.
#[derive(Clone, Debug)]
pub struct Effective {
    /// The subcommand, or `None` for the scrape.
    pub command: Option<String>,
    /// The configuration file read, and how it was chosen.
    pub file: Option<Location>,
    /// Every option of the command, in --help order.
    pub settings: Vec<Setting>,
}

impl Effective {
    /// Reads the settings of `command` (the subcommand's when `name` is
    /// one) from its `matches`.
    pub fn new(
        command: &clap::Command,
        name: Option<&str>,
        matches: &clap::ArgMatches,
        layer: Option<&Layer>,
        file: Option<Location>,
    ) -> Effective {
        let mut settings = Vec::new();
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if arg.is_positional() || NOT_IN_FILE.iter().any(|(k, _)| *k == long) {
                continue;
            }
            let id = arg.get_id().as_str();
            let from_file = || {
                layer.and_then(|l| {
                    l.line_of(name, id)
                        .map(|line| Source::File(l.path().to_path_buf(), line))
                })
            };
            let source = match matches.value_source(id) {
                Some(ValueSource::CommandLine) => Source::Flag,
                Some(ValueSource::EnvVariable) => Source::Env(
                    arg.get_env()
                        .map(|e| e.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                ),
                Some(ValueSource::DefaultValue) => from_file().unwrap_or(Source::Default),
                _ => Source::Unset,
            };
            let mut value = render_value(arg, id, matches);
            if value.as_deref() == Some("false") && opposite_flag(command, arg).is_some() {
                // Not given: `robots = false` is refused in a file (it
                // would not mean no-robots), so it is not printed.
                value = None;
            }
            let source = if value.is_none() {
                Source::Unset
            } else {
                source
            };
            settings.push(Setting {
                key: long.to_owned(),
                value,
                source,
            });
        }
        Effective {
            command: name.map(str::to_owned),
            file,
            settings,
        }
    }
}

/// Option `id`'s value in `matches` as TOML, secrets masked.
fn render_value(arg: &clap::Arg, id: &str, matches: &clap::ArgMatches) -> Option<String> {
    match arg.get_action() {
        ArgAction::SetTrue | ArgAction::SetFalse => matches
            .try_get_one::<bool>(id)
            .ok()
            .flatten()
            .map(|b| b.to_string()),
        ArgAction::Count => matches
            .try_get_one::<u8>(id)
            .ok()
            .flatten()
            .map(|n| n.to_string()),
        action => {
            let raw: Vec<String> = matches
                .get_raw(id)?
                .map(|v: &OsStr| {
                    let v = v.to_string_lossy();
                    let shown = if arg.is_hide_env_values_set() && !is_masked_by_form(id) {
                        "***".to_owned()
                    } else {
                        masked(id, &v)
                    };
                    quote(&shown)
                })
                .collect();
            if matches!(action, ArgAction::Append) {
                Some(format!("[{}]", raw.join(", ")))
            } else {
                raw.into_iter().next()
            }
        }
    }
}

/// Options [`masked`] knows the form of, which keep their unsecret part.
fn is_masked_by_form(id: &str) -> bool {
    matches!(id, "user" | "cookies" | "proxy" | "redis" | "headers")
}

/// `s` as a TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl std::fmt::Display for Effective {
    /// TOML that would give the same settings as a configuration file
    /// (secrets masked), each line saying where its value comes from.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "# The settings scriptscrape runs with: flag > env > file > default."
        )?;
        match &self.file {
            Some(file) => {
                let how = match file.chosen {
                    Chosen::Flag => "--config",
                    Chosen::Env => CONFIG_VAR,
                    Chosen::Default => "the default location",
                };
                writeln!(f, "# Configuration file: {} ({how})", file.path.display())?;
            }
            None => writeln!(f, "# Configuration file: none")?,
        }
        if let Some(name) = &self.command {
            writeln!(f, "[{name}]")?;
        }
        let width = self
            .settings
            .iter()
            .filter_map(|s| s.value.as_ref().map(|v| s.key.len() + v.len() + 3))
            .max()
            .unwrap_or(0)
            .min(60);
        for s in &self.settings {
            let Some(value) = &s.value else {
                writeln!(f, "# {} (not set)", s.key)?;
                continue;
            };
            let assignment = format!("{} = {value}", s.key);
            let source = match &s.source {
                Source::Flag => "flag".to_owned(),
                Source::Env(name) => format!("env {name}"),
                Source::File(path, line) => format!("file {}:{line}", path.display()),
                Source::Default | Source::Unset => "default".to_owned(),
            };
            writeln!(f, "{assignment:<width$}  # {source}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    fn args(words: &[&str]) -> Vec<OsString> {
        std::iter::once("scriptscrape")
            .chain(words.iter().copied())
            .map(OsString::from)
            .collect()
    }

    fn layer(text: &str) -> Result<Layer, FileError> {
        Layer::new(
            &ConfigFile::from_text("c.toml", text),
            &crate::cli::command(),
        )
    }

    fn err(text: &str) -> String {
        layer(text).unwrap_err().to_string()
    }

    #[test]
    fn the_flag_then_the_variable_then_the_default_file() {
        let none = env_of(&[]);
        let located = locate(&args(&["--config", "a.toml", "x"]), &none).unwrap();
        assert_eq!(
            (located.path, located.chosen),
            ("a.toml".into(), Chosen::Flag)
        );
        let located = locate(&args(&["--config=b.toml"]), &none).unwrap();
        assert_eq!(located.path, PathBuf::from("b.toml"));
        let env = env_of(&[(CONFIG_VAR, "e.toml")]);
        assert_eq!(locate(&args(&[]), &env).unwrap().chosen, Chosen::Env);
        assert_eq!(
            locate(&args(&["--config", "a.toml"]), &env).unwrap().chosen,
            Chosen::Flag
        );
        assert_eq!(locate(&args(&["--no-config"]), &env), None);
        assert_eq!(locate(&args(&[]), &env_of(&[(CONFIG_VAR, "")])), None);
        // After "--", a word is an INPUT.
        assert_eq!(locate(&args(&["--", "--config", "a.toml"]), &none), None);
        assert_eq!(
            default_path(&env_of(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")])),
            Some(PathBuf::from("/x/scriptscrape/config.toml"))
        );
        assert_eq!(
            default_path(&env_of(&[("XDG_CONFIG_HOME", "rel"), ("HOME", "/h")])),
            Some(PathBuf::from("/h/.config/scriptscrape/config.toml"))
        );
        // The default file is read only when it is there.
        assert_eq!(
            locate(
                &args(&[]),
                &env_of(&[("XDG_CONFIG_HOME", "/nonexistent-dir")])
            ),
            None
        );
    }

    #[test]
    fn keys_are_long_option_names_checked_by_their_parsers() {
        let l = layer("concurrency = 4\nuser-agent = \"bot/1\"\nfetch-scripts = true\n").unwrap();
        assert_eq!(l.line_of(None, "concurrency"), Some(1));
        assert_eq!(l.line_of(None, "user_agent"), Some(2));
        assert_eq!(l.line_of(None, "fetch_scripts"), Some(3));
        // A top-level key also sets the same option of work.
        assert_eq!(l.line_of(Some("work"), "concurrency"), Some(1));
        assert_eq!(l.line_of(Some("diff"), "concurrency"), None);
        assert_eq!(
            err("\n\nconcurency = 4\n"),
            "c.toml:3: unknown key \"concurency\" (did you mean \"concurrency\"?)"
        );
        assert_eq!(
            err("user_agent = \"x\"\n"),
            "c.toml:1: unknown key \"user_agent\" (did you mean \"user-agent\"?)"
        );
        let e = err("# comment\nconcurrency = 0\n");
        assert!(
            e.starts_with("c.toml:2: concurrency: invalid value '0'"),
            "{e}"
        );
        assert!(e.contains("at least 1"), "{e}");
        let e = err("format = \"xml\"\n");
        assert!(
            e.contains("c.toml:1: format:") && e.contains("csv, jsonl"),
            "{e}"
        );
        let e = err("robots = \"yes\"\n");
        assert_eq!(e, "c.toml:1: robots: expected true or false, not a string");
        let e = err("timeout = [1, 2]\n");
        assert_eq!(e, "c.toml:1: timeout: takes one value, not a list");
        let e = err("config = \"other.toml\"\n");
        assert!(e.contains("cannot be set in a configuration file"), "{e}");
        let e = err("concurrency = \n");
        assert!(e.starts_with("c.toml:1: invalid TOML:"), "{e}");
    }

    #[test]
    fn tables_are_commands_and_win_over_top_level_keys() {
        let l = layer("concurrency = 4\n[work]\nconcurrency = 9\nredis = \"redis://q/\"\n[diff]\nignore-query = true\n")
            .unwrap();
        assert_eq!(l.line_of(Some("work"), "concurrency"), Some(3));
        assert_eq!(l.line_of(None, "concurrency"), Some(1));
        assert_eq!(l.line_of(Some("diff"), "ignore_query"), Some(6));
        let e = err("ignore-query = true\n");
        assert!(
            e.contains("an option of diff only: set it under [diff]"),
            "{e}"
        );
        let e = err("[wrok]\nconcurrency = 1\n");
        assert!(e.contains("did you mean [work]?"), "{e}");
        let e = err("[diff]\nconcurrency = 1\n");
        assert!(e.starts_with("c.toml:2: [diff] unknown key"), "{e}");
        // The top-level Redis URL serves every command of the queue.
        let l = layer("redis = \"redis://:pw@q/\"\n").unwrap();
        for c in ["enqueue", "work", "collect", "jobs"] {
            assert_eq!(l.line_of(Some(c), "redis"), Some(1), "{c}");
        }
        assert_eq!(l.secret_keys(), ["redis"]);
    }

    #[test]
    fn arrays_for_repeatable_options_and_numbers_as_typed() {
        use clap::FromArgMatches as _;
        let l = layer(
            "header = [\"A: b\", \"C: d\"]\ncookie = \"s=1\"\nmax-failures = 2.5\ndelay = 0x10\nverbose = 2\n",
        )
        .unwrap();
        let command = l.apply(crate::cli::command());
        let matches = command.try_get_matches_from(["scriptscrape"]).unwrap();
        let cli = crate::cli::Cli::from_arg_matches(&matches).unwrap();
        assert_eq!(cli.fetch.headers, ["A: b", "C: d"]);
        assert_eq!(cli.fetch.cookies, ["s=1"]);
        assert_eq!(cli.outputs.max_failures, 2.5);
        assert_eq!(cli.fetch.delay, std::time::Duration::from_millis(16));
        assert_eq!(cli.log.verbose, 2);
    }

    #[test]
    fn secrets_are_masked() {
        assert_eq!(masked("user", "ann:p4ss"), "***");
        assert_eq!(masked("user", "ghp_TOKEN:x"), "***");
        assert_eq!(masked("cookies", "sid=abc"), "sid=***");
        assert_eq!(masked("cookies", "a=1; b=2"), "a=***; b=***");
        assert_eq!(masked("cookies", "jar.txt"), "jar.txt");
        for header in [
            "PRIVATE-TOKEN: glpat-x",
            "X-Access-Token: x",
            "X-Goog-Api-Key: x",
            "X-Session-Id: x",
        ] {
            let name = header.split_once(':').unwrap().0;
            assert_eq!(masked("headers", header), format!("{name}: ***"));
        }
        assert_eq!(masked("headers", "Authorization Bearer SECRETXYZ"), "***");
        assert_eq!(
            masked("headers", "Authorization: Bearer x"),
            "Authorization: ***"
        );
        assert_eq!(masked("headers", "Accept: text/html"), "Accept: text/html");
        assert_eq!(
            masked("redis", "redis://:pw@q:6379/"),
            "redis://***@q:6379/"
        );
        assert_eq!(masked("proxy", "http://u:pw@p:3128"), "http://***@p:3128");
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
