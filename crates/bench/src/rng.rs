//! The benchmarks' random numbers: xorshift64*, deterministic for a seed and
//! dependency-free, so a table can be reproduced from its `--seed`.

pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value; zero is avoided internally).
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}
