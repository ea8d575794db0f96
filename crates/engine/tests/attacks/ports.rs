//! Attacks: ports (see `docs/security.md`).
