//! Attacks: adoption (see `docs/security.md`).
