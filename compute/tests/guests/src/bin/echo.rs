//! Copies its input to its output: the metering of bytes read and written.
use std::io::{Read, Write};

fn main() {
    let mut data = Vec::new();
    std::io::stdin().read_to_end(&mut data).expect("stdin");
    std::io::stdout().write_all(&data).expect("stdout");
}
