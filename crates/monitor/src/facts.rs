//! The ledger facts the monitor reads, as plain values: the node feeds them from committed
//! blocks, in ledger order, so the monitor never touches SQLite, the network or a clock.
//! Every fact carries its block's time (`at_ms`) and height; that time is the only clock
//! the monitor knows, which is what makes every replica compute the same alerts.

/// A user's role, as registered on the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Doctor,
    Patient,
    Pharmacy,
    Department,
}

impl Role {
    /// Staff are the users who read other people's data.
    pub fn is_staff(self) -> bool {
        !matches!(self, Role::Patient)
    }
}

/// To whom a patient grants consent. Departments are named per organisation: no string
/// equality across organisations means anything.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Grantee {
    /// One user (doctor or pharmacy) personally.
    User(String),
    /// A department of an organisation.
    Department {
        organisation: u16,
        department: String,
    },
}

/// How the ledger let a reader see the patient's data (what the audit record says). The
/// monitor does not take it as an explanation: that the ledger allowed a read is why it
/// happened, not why it was needed (only a pharmacy's code is checked against a
/// prescription).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReadVia {
    /// The patient reads their own data.
    Own,
    /// A consent to the reader personally.
    Consent,
    /// A consent to the reader's department.
    Department,
    /// An open break-glass access.
    BreakGlass,
    /// A one-time consent code.
    ConsentCode,
    /// A pharmacy presenting a prescription code.
    PharmacyCode,
}

/// What happened, without its time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FactKind {
    UserRegistered {
        user_id: String,
        role: Role,
        organisation: u16,
        department: String,
        display_name: String,
    },
    RecordWritten {
        doctor: String,
        patient: String,
        department: String,
        prescribes: bool,
    },
    ConsentGranted {
        patient: String,
        grantee: Grantee,
    },
    ConsentRevoked {
        patient: String,
        grantee: Grantee,
    },
    ConsentCodeUsed {
        doctor: String,
        patient: String,
    },
    BreakGlassOpened {
        doctor: String,
        patient: String,
        until_ms: u64,
    },
    Read {
        reader: String,
        patient: String,
        via: ReadVia,
    },
}

/// One ledger fact: what happened, in which block, at the block's time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fact {
    /// The block's timestamp (milliseconds since the Unix epoch).
    pub at_ms: u64,
    pub block_height: u64,
    pub kind: FactKind,
}

impl Fact {
    pub fn new(at_ms: u64, block_height: u64, kind: FactKind) -> Self {
        Self {
            at_ms,
            block_height,
            kind,
        }
    }
}
