//! Attacks: l2 (see `docs/security.md`).
