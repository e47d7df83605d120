//! Exits with status 3 after saying why.
fn main() {
    eprintln!("no column named price");
    std::process::exit(3);
}
