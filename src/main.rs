//! The `caas-broker` command.

fn main() {
    println!("caas-broker {}", env!("CARGO_PKG_VERSION"));
}
