//! Asks for 10 GiB of memory, a MiB at a time, touching each.
fn main() {
    let mut held: Vec<Vec<u8>> = Vec::new();
    for _ in 0..10 * 1024 {
        let mut block = vec![0u8; 1024 * 1024];
        block[0] = 1;
        held.push(std::hint::black_box(block));
    }
    println!("held {} MiB", held.len());
}
