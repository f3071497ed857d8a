// Where a matrix part's rows and scales lie in its buffer (WeightGeom in
// runtime/params.rs); its own file so that kernels without weights (the
// prefill's f16 conversions and product) can share the mat-mats' Params.
struct WeightGeom {
    row_words: u32,
    scale_words: u32,
    scale_off: u32,
    rows: u32,
}
