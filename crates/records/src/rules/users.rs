//! Registering and deactivating users: a department registers doctors and patients of
//! its own department (and pharmacies), the organisation's operator registers anyone;
//! a department deactivates its own doctors and patients, the operator its
//! organisation's users.

use medchain_store::rusqlite::params;
use medchain_types::UserRole;

use super::{need_role, text_ok, Acting, Request};
use crate::ledger::exec;
use crate::limits::{DEPARTMENT_MAX_CHARS, DISPLAY_NAME_MAX_CHARS};
use crate::outcome::{reject, Checked, Outcome};
use crate::policy::user;

/// The fields of a `RegisterUser`.
#[derive(Debug)]
pub(super) struct NewUser<'a> {
    pub user_id: &'a str,
    pub role: UserRole,
    pub department: &'a str,
    pub display_name: &'a str,
}

pub(super) fn register(r: &Request<'_>, actor: &Acting, new: NewUser<'_>) -> Checked {
    if !medchain_types::genesis::valid_user_id(new.user_id) {
        return reject(
            Outcome::Invalid,
            "user_id: 1 to 64 letters, digits, '-', '_' or '.'",
        );
    }
    text_ok(new.display_name, "display_name", DISPLAY_NAME_MAX_CHARS)?;
    text_ok(new.department, "department", DEPARTMENT_MAX_CHARS)?;
    for (field, value) in [
        ("display_name", new.display_name),
        ("department", new.department),
    ] {
        if let Some(problem) = crate::names::name_problem(value) {
            return reject(Outcome::Invalid, format!("{field}: {problem}"));
        }
    }
    let organisation = match actor {
        Acting::Operator => r.signer_organisation(),
        Acting::User(a) => {
            need_role(a, UserRole::Department)?;
            let own_dept = matches!(new.role, UserRole::Doctor | UserRole::Patient)
                && new.department == a.department;
            if !(own_dept || new.role == UserRole::Pharmacy) {
                return reject(
                    Outcome::Forbidden,
                    "a department registers doctors and patients of its own department, and pharmacies",
                );
            }
            a.organisation
        }
    };
    if user(r.conn, new.user_id)?.is_some() {
        return reject(
            Outcome::Conflict,
            format!("user {} already exists", new.user_id),
        );
    }
    exec(
        r.conn,
        "INSERT INTO users VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)",
        params![
            new.user_id,
            new.role.as_str(),
            organisation,
            new.department,
            new.display_name,
            r.height as i64
        ],
    )?;
    Ok(())
}

pub(super) fn deactivate(r: &Request<'_>, actor: &Acting, user_id: &str) -> Checked {
    let Some(target) = user(r.conn, user_id)? else {
        return reject(Outcome::NotFound, format!("no user {user_id}"));
    };
    let allowed = match actor {
        Acting::Operator => target.organisation == r.signer_organisation(),
        // Departments are named per organisation: cardiology of one hospital has no
        // say over cardiology of another.
        Acting::User(a) => {
            a.role == UserRole::Department
                && matches!(target.role, UserRole::Doctor | UserRole::Patient)
                && target.organisation == a.organisation
                && target.department == a.department
        }
    };
    if !allowed {
        return reject(
            Outcome::Forbidden,
            "only the user's department (or organisation) may deactivate them",
        );
    }
    exec(
        r.conn,
        "UPDATE users SET active = 0 WHERE user_id = ?1",
        params![user_id],
    )?;
    Ok(())
}
