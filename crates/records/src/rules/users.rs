//! Registering and deactivating users: a department registers doctors and patients of
//! its own department (and pharmacies), the organisation's operator registers anyone;
//! a department deactivates its own doctors and patients, the operator its
//! organisation's users. Department administrators are the exception: once an
//! organisation has one, adding or removing another takes the operator and a second
//! administrator together (a proposal, `rules/proposals.rs`), so neither a stolen
//! operator key nor one administrator can change who administers alone.

use medchain_store::rusqlite::params;
use medchain_types::UserRole;

use super::{need_role, text_ok, Acting, Request};
use crate::ledger::exec;
use crate::limits::{DEPARTMENT_MAX_CHARS, DISPLAY_NAME_MAX_CHARS, SEALED_DISPLAY_NAME_MAX_CHARS};
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
    check_new_user(r, &new)?;
    let organisation = match actor {
        Acting::Operator => {
            let org = r.signer_organisation();
            if new.role == UserRole::Department && administrators(r, org, None)? > 0 {
                return reject(
                    Outcome::Forbidden,
                    "organisation already has a department administrator: another one is a \
                     proposal that the operator and an administrator approve",
                );
            }
            org
        }
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
    insert_user(r, &new, organisation)
}

/// The checks of a new user that do not depend on who registers them.
pub(super) fn check_new_user(r: &Request<'_>, new: &NewUser<'_>) -> Checked {
    if !medchain_types::genesis::valid_user_id(new.user_id) {
        return reject(
            Outcome::Invalid,
            "user_id: 1 to 64 letters, digits, '-', '_' or '.'",
        );
    }
    // A patient's name is sealed under their data key by their home organisation (a
    // longer, hex field); anyone else's is in clear.
    let sealed = new.role == UserRole::Patient
        && new
            .display_name
            .starts_with(crate::sealed::SEALED_NAME_PREFIX);
    let max = if sealed {
        SEALED_DISPLAY_NAME_MAX_CHARS
    } else {
        DISPLAY_NAME_MAX_CHARS
    };
    text_ok(new.display_name, "display_name", max)?;
    text_ok(new.department, "department", DEPARTMENT_MAX_CHARS)?;
    for (field, value) in [
        ("display_name", new.display_name),
        ("department", new.department),
    ] {
        if let Some(problem) = crate::names::name_problem(value) {
            return reject(Outcome::Invalid, format!("{field}: {problem}"));
        }
    }
    if user(r.conn, new.user_id)?.is_some() {
        return reject(
            Outcome::Conflict,
            format!("user {} already exists", new.user_id),
        );
    }
    Ok(())
}

/// Insert a checked new user of `organisation`.
pub(super) fn insert_user(r: &Request<'_>, new: &NewUser<'_>, organisation: u16) -> Checked {
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

/// Active department administrators of `organisation`, other than `except`.
pub(super) fn administrators(
    r: &Request<'_>,
    organisation: u16,
    except: Option<&str>,
) -> Checked<i64> {
    Ok(r.conn
        .prepare_cached(
            "SELECT COUNT(*) FROM users WHERE role = 'department' AND active = 1
             AND organisation = ?1 AND user_id != ?2",
        )?
        .query_row(params![organisation, except.unwrap_or("")], |row| {
            row.get(0)
        })?)
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
    if target.role == UserRole::Department
        && administrators(r, target.organisation, Some(user_id))? > 0
    {
        return reject(
            Outcome::Forbidden,
            "deactivating a department administrator is a proposal that the operator and \
             another administrator approve",
        );
    }
    exec(
        r.conn,
        "UPDATE users SET active = 0 WHERE user_id = ?1",
        params![user_id],
    )?;
    Ok(())
}
