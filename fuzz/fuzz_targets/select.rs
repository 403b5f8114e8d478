//! See `brine_bridge::fuzzing::select` for the input format and the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| brine_bridge::fuzzing::select(data));
