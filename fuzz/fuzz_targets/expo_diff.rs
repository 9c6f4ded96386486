//! soakd's Prometheus exposition parser against a grammar-first reference. The first byte
//! picks the mode: even, the rest is the text (lossy UTF-8); odd, the rest drives the
//! exposition generator. Any difference (or a panic) is a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use soakd::fuzzing::{check_expo, gen};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = if mode & 1 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        gen::exposition(&mut gen::FromBytes::new(rest))
    };
    if let Err(why) = check_expo(&text) {
        panic!("{why}");
    }
});
