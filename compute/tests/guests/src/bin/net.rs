//! Tries to open a socket.
fn main() {
    match std::net::TcpStream::connect("127.0.0.1:80") {
        Ok(_) => println!("connected"),
        Err(e) => eprintln!("connect: {e}"),
    }
}
