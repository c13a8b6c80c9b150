//! The binary: parse flags, set up logging, hand over to `app`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = modelarts_image_exporter::cli::Cli::parse();
    modelarts_image_exporter::app::main(cli)
}
