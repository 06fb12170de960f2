//! TEMPORARY entry point on the `server` branch so the server can be run and tested end to
//! end; the lead's `src/main.rs` + `src/cli.rs` replace this on merge.

use clap::Parser;

#[derive(Parser)]
#[command(name = "podgate")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Serve the admission webhook over HTTPS.
    Serve(podgate::server::ServeArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => podgate::server::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("podgate: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
