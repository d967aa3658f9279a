use clap::Parser;
use flyte::{Exit, cli::Cli, commands, output::Output};

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            let exit = if error.use_stderr() { Exit::Usage } else { Exit::Success };
            return std::process::ExitCode::from(exit as u8);
        }
    };
    let out = Output::new(cli.output, cli.quiet);
    let exit = commands::run(cli, &out).unwrap_or_else(|error| {
        out.error(&error);
        error.exit()
    });
    std::process::ExitCode::from(exit as u8)
}
