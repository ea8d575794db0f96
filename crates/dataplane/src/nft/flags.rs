//! Small bit-flag newtypes for the kernel's flag words.
//!
//! Contract: each type wraps the kernel's own bit values; `|` combines them
//! and `bits()` is what goes on the wire. No external bitflags crate: the few
//! operations needed are here.

macro_rules! flag_type {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $flag:ident = $v:expr,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(u32);

        impl $name {
            $($(#[$fm])* pub const $flag: $name = $name($v);)*
            /// No flag set.
            pub const EMPTY: $name = $name(0);

            /// The raw flag word, as the kernel sees it.
            pub const fn bits(self) -> u32 {
                self.0
            }

            /// Flags from a raw word (unknown bits are kept).
            pub const fn from_bits(bits: u32) -> Self {
                $name(bits)
            }

            /// Whether every flag of `other` is set.
            pub const fn contains(self, other: $name) -> bool {
                self.0 & other.0 == other.0
            }
        }

        impl std::ops::BitOr for $name {
            type Output = $name;
            fn bitor(self, rhs: $name) -> $name {
                $name(self.0 | rhs.0)
            }
        }
    };
}

flag_type!(
    /// `NFT_SET_*` flags of a set.
    SetFlags {
        ANONYMOUS = 0x1,
        CONSTANT = 0x2,
        INTERVAL = 0x4,
        MAP = 0x8,
        TIMEOUT = 0x10,
        CONCAT = 0x80,
    }
);

flag_type!(
    /// Connection-tracking state bits as `ct state` loads them (host order u32).
    CtState {
        INVALID = 1,
        ESTABLISHED = 2,
        RELATED = 4,
        NEW = 8,
        UNTRACKED = 64,
    }
);

flag_type!(
    /// `NF_NAT_RANGE_*` flags of nat, masquerade and redirect.
    NatFlags {
        MAP_IPS = 0x1,
        PROTO_SPECIFIED = 0x2,
        PROTO_RANDOM = 0x4,
        PERSISTENT = 0x8,
        PROTO_RANDOM_FULLY = 0x10,
    }
);

flag_type!(
    /// `NFTA_FIB_F_*`: which address the route lookup uses.
    FibFlags {
        SADDR = 0x1,
        DADDR = 0x2,
        MARK = 0x4,
        IIF = 0x8,
        OIF = 0x10,
        PRESENT = 0x20,
    }
);
