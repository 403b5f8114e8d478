//! See `brine_server::fuzzing::tokens` for the input format and the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| brine_server::fuzzing::tokens(data));
