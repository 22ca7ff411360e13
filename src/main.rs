//! The `ssehub` binary.
fn main() {
    println!("ssehub: not yet");
}
