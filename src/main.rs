//! The geosteer binary: parse the command line, set up logging, run.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = geosteer::Cli::parse();
    geosteer::init_tracing(cli.log_format);
    match geosteer::run(cli) {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("geosteer: {}", geosteer::error_text(e.as_ref()));
            std::process::ExitCode::from(2)
        }
    }
}
