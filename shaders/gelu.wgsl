// GELU, tanh approximation (PyTorch's `gelu(approximate="tanh")`, Gemma's
// gelu_pytorch_tanh). The argument is clamped so that tanh sees no value
// whose exponential overflows (tanh(±10) is ±1 in f32).
fn gelu_tanh(x: f32) -> f32 {
    let u = clamp(0.7978845608028654 * (x + 0.044715 * x * x * x), -10.0, 10.0);
    return 0.5 * x * (1.0 + tanh(u));
}
