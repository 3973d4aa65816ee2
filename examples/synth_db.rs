//! Writes a synthetic GeoIP2-City database for scale tests:
//! `cargo run --release --example synth_db -- OUT.mmdb NETWORKS [SEED]`.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: synth_db OUT.mmdb NETWORKS [SEED]");
        std::process::exit(2);
    }
    let n: usize = args[2].parse().expect("NETWORKS is a number");
    let seed: u64 = args
        .get(3)
        .map_or(1, |s| s.parse().expect("SEED is a number"));
    match geosteer::geo::synth(std::path::Path::new(&args[1]), n, seed) {
        Ok(stats) => println!("{stats:?}"),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
