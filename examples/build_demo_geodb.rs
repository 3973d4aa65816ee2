//! Rebuilds `geodb/demo-city.mmdb` from `geodb/demo-city.yaml` (or the paths given as
//! arguments) without the CLI: `cargo run --example build_demo_geodb [src] [out]`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let src = args.next().unwrap_or_else(|| "geodb/demo-city.yaml".into());
    let out = args.next().unwrap_or_else(|| "geodb/demo-city.mmdb".into());
    let stats = geosteer::build_geodb(&src, &out, geosteer::Schema::City)?;
    println!("{}: {stats:?}", out.display());
    Ok(())
}
