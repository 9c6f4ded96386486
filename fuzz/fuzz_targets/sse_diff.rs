//! soakd's incremental SSE reader against a whole-body reference reader. The first byte picks
//! the event bound and the pieces; even: the rest is the body; odd: the rest drives the SSE
//! generator. Any difference, or a buffer over the bound, is a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use soakd::fuzzing::{check_sse, gen};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (body, splits, max) = if mode & 1 == 0 {
        let max = [4, 8, 16, 64, 1 << 20][usize::from(mode >> 1) % 5];
        (rest.to_vec(), vec![1 + usize::from(mode >> 4), 3], max)
    } else {
        gen::sse(&mut gen::FromBytes::new(rest))
    };
    if let Err(why) = check_sse(&body, &splits, max) {
        panic!("{why}");
    }
});
