// Activation functions shared by act.wgsl and gated_act.wgsl (included by prepending; no entry point).
// ACT selects one at pipeline creation: 0 relu, 1 gelu (erf), 2 gelu_tanh (HF gelu_new / gelu_pytorch_tanh),
// 3 silu.

override ACT: u32 = 0;

// erfc(z) for z >= 0 with relative error < 1.2e-7 everywhere (Numerical Recipes' Chebyshev fit, erfcc), so
// gelu keeps its relative accuracy far into the negative tail where 1 + erf(x) cancels.
fn erfcPositive(z: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.5 * z);
  let poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return t * exp(poly);
}

// gelu(x) = x Phi(x) = 0.5 x erfc(-x / sqrt(2)).
fn gelu(x: f32) -> f32 {
  let z = x * 0.7071067811865476;
  if (z >= 0.0) {
    return x * (1.0 - 0.5 * erfcPositive(z));
  }
  return 0.5 * x * erfcPositive(-z);
}

// HF gelu_new: 0.5 x (1 + tanh(y)), y = sqrt(2 / pi) (x + 0.044715 x^3), computed as x sigmoid(2 y) (the same
// function, since 1 + tanh(y) = 2 sigmoid(2 y)) to avoid cancellation in the negative tail and overflow in tanh.
fn geluTanh(x: f32) -> f32 {
  let y = 0.7978845608028654 * (x + 0.044715 * x * x * x);
  return x / (1.0 + exp(-2.0 * y));
}

fn silu(x: f32) -> f32 {
  return x / (1.0 + exp(-x));
}

fn activation(x: f32) -> f32 {
  switch ACT {
    case 1u: {
      return gelu(x);
    }
    case 2u: {
      return geluTanh(x);
    }
    case 3u: {
      return silu(x);
    }
    default: {
      return max(x, 0.0);
    }
  }
}
