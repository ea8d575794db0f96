//! Attacks: tamper (see `docs/security.md`).
