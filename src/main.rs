//! Parse the command line, run the subcommand, print its error and causes once, pick the exit code.

use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _};
use whisper_appliance::cli::Cli;
use whisper_appliance::commands;
use whisper_appliance::errors::report;

fn main() -> ExitCode {
    // The matches, not only the parsed values: `serve` layers its config file under the
    // settings that were given as flags or variables, and only those.
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    match commands::run(cli, &matches) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => match error.exit_code() {
            0 => ExitCode::SUCCESS,
            code => {
                eprintln!("error: {}", report(&error));
                ExitCode::from(code)
            }
        },
    }
}
