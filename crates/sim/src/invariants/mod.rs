//! Safety and liveness properties checked while the simulator runs, one file each, each
//! citing the section of Castro & Liskov (OSDI 1999) it comes from. Safety invariants are
//! checked on every output of every correct replica; liveness ones when their deadline
//! passes.

pub mod agreement;
pub mod certificates;
pub mod integrity;
pub mod liveness;
pub mod view_change_progress;
pub mod violation;

pub use agreement::Agreement;
pub use certificates::Certificates;
pub use integrity::Integrity;
pub use liveness::Liveness;
pub use view_change_progress::ViewChangeProgress;
pub use violation::{ReplicaView, Violation};
