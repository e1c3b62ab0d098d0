#![no_main]
//! cargo-fuzz target; the logic (and the input layout) is in `keyline_shs_fuzz::kps_engine`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| keyline_shs_fuzz::kps_engine(data));
