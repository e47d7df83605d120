//! Panics.
fn main() {
    let v: Vec<u8> = Vec::new();
    println!("{}", v[std::hint::black_box(3)]);
}
