/**
 * The per-row parameter block of assembly/sampler.ts, mirrored for the facade: field f of row r is the 32-bit
 * word at index f * S + r (struct of arrays). Keep in step with the F_* constants there; Sampler.create checks
 * the field count against the module's `samplerNumFields()`.
 */
export const F = {
  temperature: 0, // f32; 0 = greedy
  topK: 1, // i32; 0 = off
  topP: 2, // f32; 1 = off
  minP: 3, // f32; 0 = off
  presence: 4, // f32
  frequency: 5, // f32
  repetition: 6, // f32; 1 = off
  numLogprobs: 7, // i32; -1 = none
  rng: 8, // u32 x 4 (8..11), xoshiro128** state, in and out
  prompt: 12, // pool offset, length (12, 13)
  output: 14, // pool offset, length
  bias: 16, // pool offset, n: ids then f32 biases
  allowed: 18, // pool offset, length
  banned: 20, // pool offset, length
  raw: 22, // byte pointer of the raw row (logprobs rows): a copy, or the row itself when stages 2-3 leave it alone
  topOut: 23, // byte pointer: top ids i32[k], then logprobs f32[k]
  token: 24, // out: sampled id
  logprob: 25, // out: its raw logprob
  rank: 26, // out: its rank
  lse: 27, // internal
} as const;

export const NUM_FIELDS = 28;
