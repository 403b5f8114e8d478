//! See `brine_crypto::fuzzing::envelope` for the input format and the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| brine_crypto::fuzzing::envelope(data));
