//! Links the executable at a fixed address (not position-independent) on
//! Linux. A position-independent executable is relocated by the dynamic
//! loader at every start: for this binary over 10,000 relocations and some
//! 45 pages of tables written, about 0.3 ms of each `record` (the command
//! every prompt runs), 12% of it. What is given up is address-space
//! randomisation of the executable's own code; its libraries, stack and
//! heap are still randomised.

fn main() {
    // A static build (`-C target-feature=+crt-static`) is linked as a
    // static PIE, which relocates itself and does not combine with -no-pie.
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if linux && !features.split(',').any(|f| f == "crt-static") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
