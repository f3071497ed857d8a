//! CPU dequantization against the `gguf` Python package
//! (tests/reference/quant/make_quant_reference.py recorded the values).

use engine::formats::{quant, DType};
use serde_json::Value;

fn reference() -> Value {
    serde_json::from_str(include_str!("reference/quant/quant_blocks.json")).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn every_type_dequantizes_like_gguf_py() {
    let r = reference();
    for dtype in DType::ALL {
        let entry = &r["blocks"][dtype.name()];
        let bytes = hex(entry["hex"].as_str().unwrap());
        let want: Vec<f32> = entry["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let got = quant::dequantize(dtype, &bytes);
        assert_eq!(got.len(), want.len(), "{dtype}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.to_bits(), w.to_bits(), "{dtype} value {i}: {g} != {w}");
        }
    }
}
