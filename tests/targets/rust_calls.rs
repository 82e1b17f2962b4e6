// rust_calls: calls rust_calls::work three times (a Rust-mangled symbol) and prints 9.
#[inline(never)]
fn work(x: u64) -> u64 {
    x * 2 + 1
}

fn main() {
    let mut s = 0;
    for i in 0..3 {
        s += work(std::hint::black_box(i));
    }
    println!("{s}");
}
