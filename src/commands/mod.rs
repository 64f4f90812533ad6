//! The subcommands: one module each, each with a `run` that takes its parsed arguments and
//! returns a [`CommandError`]. `main` only parses, calls [`run`], prints and exits.
//!
//! What a command prints for people goes to stderr; stdout carries only results (a
//! transcript, a new key, a listing), so a command piped into another stays clean, and a
//! reader that stops early (`| head`) is not an error (see [`CommandError::exit_code`]).

mod keys;
mod model;
mod serve;
mod transcribe;

use std::io::Write as _;

use clap::ArgMatches;

use crate::cli::{self, Cli, Command, ModelCommand};
use crate::errors::CommandError;
use crate::logging;

/// Runs the command `cli` names; `matches` tells `serve` which settings were given.
pub fn run(cli: Cli, matches: &ArgMatches) -> Result<(), CommandError> {
    logging::init(matches!(cli.command, Command::Serve(_)));
    match cli.command {
        Command::Serve(args) => {
            let matches = matches.subcommand_matches("serve").expect("clap parsed the serve command");
            serve::run(&args, matches).map_err(Into::into)
        }
        Command::Transcribe(args) => transcribe::run(args),
        Command::Model(ModelCommand::Import { sources, out }) => model::import(&sources, &out),
        Command::Model(ModelCommand::ImportVad { wheel, out }) => model::import_vad(&wheel, &out),
        Command::Model(ModelCommand::Quantize { to, input, out }) => model::quantize(&input, &out, to),
        Command::Model(ModelCommand::Info { file }) => model::info(&file),
        Command::Keys(args) => keys::run(&args),
        Command::Man { out_dir } => {
            cli::write_man_pages(&out_dir).map_err(|source| CommandError::ManPages { dir: out_dir, source })
        }
    }
}

/// Writes a command's result to stdout at once, so that a closed pipe is seen here.
fn print(text: &str) -> Result<(), CommandError> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).map_err(CommandError::Stdout)
}
