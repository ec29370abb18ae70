//! `pow` and `log10` under their C names, from the pure-Rust `libm` crate.
//!
//! They are the only two symbols wharfd took from the C math library
//! (`f64::powf` in tokio's scheduler statistics, `f64::log10` in size
//! formatting), and for them the dynamic loader mapped all of
//! `libm.so.6`: about 0.5 MiB of wharfd's idle resident set. Defined here,
//! the references resolve inside the executable and the linker (with
//! `--as-needed`, rustc's default) drops `libm.so.6` from its `NEEDED`
//! list. The `libm` crate is the Rust port of musl's implementation, the
//! code the static binaries already used.

/// `double pow(double, double)`.
#[unsafe(no_mangle)]
pub extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

/// `double log10(double)`.
#[unsafe(no_mangle)]
pub extern "C" fn log10(x: f64) -> f64 {
    libm::log10(x)
}

#[cfg(test)]
mod tests {
    #[test]
    fn agrees_with_the_usual_results() {
        assert_eq!(super::pow(2.0, 10.0), 1024.0);
        assert_eq!(super::pow(9.0, 0.5), 3.0);
        assert!(super::pow(0.0, -1.0).is_infinite());
        assert!(super::pow(-8.0, 1.0 / 3.0).is_nan());
        assert_eq!(super::log10(1000.0), 3.0);
        assert_eq!(super::log10(1.0), 0.0);
        assert!(super::log10(-1.0).is_nan());
        assert_eq!(super::log10(0.0), f64::NEG_INFINITY);
        let x = 77_800_000.0_f64;
        assert_eq!(super::log10(x).floor(), 7.0);
    }
}
