//! Evaluates a Lisp file or expression and prints the result (a tiny driver for manual checks
//! and timing): `cargo run -p omega-lisp --example eval -- FILE` or `-e EXPR`.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = omega_lisp::Runtime::new();
    let result = match args.get(1).map(String::as_str) {
        Some("-e") => rt.eval_sync(args.get(2).map_or("", String::as_str), "<expr>"),
        Some(path) => match std::fs::read_to_string(path) {
            Ok(src) => rt.eval_sync(&src, path),
            Err(e) => {
                eprintln!("cannot read {path}: {e}");
                std::process::exit(2);
            }
        },
        None => {
            eprintln!("usage: eval FILE | eval -e EXPR");
            std::process::exit(2);
        }
    };
    match result {
        Ok(v) => println!("{}", omega_lisp::write_string(&v)),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
