#![no_main]
//! cargo-fuzz target; the logic is in `keyline_shs_fuzz::kps_parsers`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| keyline_shs_fuzz::kps_parsers(data));
