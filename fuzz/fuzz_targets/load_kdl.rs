#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| flyte_fuzz::load("fuzz.kdl", data));
