//! soakd's fast-path HTTP/1.1 reading against hyper's client connection. The first byte picks
//! the mode: even, the rest is the response itself (libFuzzer mutates raw bytes; the byte also
//! picks the pieces it is fed in); odd, the rest drives the response generator (libFuzzer
//! steers the structure). Any difference is a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use soakd::fuzzing::{check_h1, gen};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (input, splits) = if mode & 1 == 0 {
        let piece = [1, 2, 3, 7, 64, 8192][usize::from(mode >> 1) % 6];
        (rest.to_vec(), vec![piece, 1 + usize::from(mode >> 4)])
    } else {
        gen::response(&mut gen::FromBytes::new(rest))
    };
    if let Err(why) = check_h1(&input, &splits) {
        panic!("{why}");
    }
});
