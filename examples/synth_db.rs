//! Writes a synthetic GeoIP2-City database for scale tests:
//! `cargo run --release --example synth_db -- OUT.mmdb NETWORKS [SEED]`, or
//! `... -- OUT.mmdb dense RECORDS [SEED]` for one that covers the public
//! address space with RECORDS distinct cities (many-client benchmarks).
fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!(
            "usage: synth_db OUT.mmdb NETWORKS [SEED] | synth_db OUT.mmdb dense RECORDS [SEED]"
        );
        std::process::exit(2);
    }
    let out = std::path::Path::new(&args[1]);
    let dense = args[2] == "dense";
    let (count, seed_at) = if dense {
        (args.get(3).expect("RECORDS"), 4)
    } else {
        (&args[2], 3)
    };
    let n: usize = count.parse().expect("a number");
    let seed: u64 = args
        .get(seed_at)
        .map_or(1, |s| s.parse().expect("SEED is a number"));
    let made = if dense {
        geosteer::synth_dense_geodb(out, n, seed)
    } else {
        geosteer::synth_geodb(out, n, seed)
    };
    match made {
        Ok(stats) => println!("{stats:?}"),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
