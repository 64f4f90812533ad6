//! Parse the command line, run the subcommand, print its error once, pick the exit code.

use std::process::ExitCode;

use clap::Parser;
use whisper_appliance::cli::{self, Cli, Command, ModelCommand};
use whisper_appliance::errors::CommandError;
use whisper_appliance::{auth, logging, model, serve, transcribe};

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(matches!(cli.command, Command::Serve(_)));
    let result: Result<(), CommandError> = match cli.command {
        Command::Serve(args) => serve::run(&args).map_err(Into::into),
        Command::Transcribe(args) => transcribe::run(args),
        Command::Model(ModelCommand::Import { sources, out }) => model::run_import(&sources, &out).map_err(Into::into),
        Command::Model(ModelCommand::ImportVad { wheel, out }) => {
            model::run_import_vad(&wheel, &out).map_err(Into::into)
        }
        Command::Model(ModelCommand::Quantize { to, input, out }) => {
            model::run_quantize(&input, &out, to).map_err(Into::into)
        }
        Command::Model(ModelCommand::Info { file }) => model::run_info(&file).map_err(Into::into),
        Command::Keys(args) => auth::run_keys(&args),
        Command::Man { out_dir } => {
            cli::write_man_pages(&out_dir).map_err(|source| CommandError::ManPages { dir: out_dir, source })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
