//! Writes a 10 GiB result.
use std::io::Write;

fn main() {
    let block = vec![b'x'; 1024 * 1024];
    let mut out = std::io::stdout().lock();
    for _ in 0..10 * 1024 {
        out.write_all(&block).expect("stdout");
    }
}
