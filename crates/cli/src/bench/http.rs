//! Records through the HTTP API, as a person's browser would send them: a doctor of each
//! organisation signs in at that organisation's replica (users sign in only at their
//! home organisation: d001 at St Mary's, `bench-d{i}` elsewhere, see `init
//! --bench-accounts`) and adds records for p001 and p002 (who consented to all of them),
//! so the measurement includes every gateway, its access checks and the wait for the
//! commit.

use std::time::Duration;

use anyhow::{bail, Context};
use tokio::sync::{Mutex, RwLock};

use super::failure::Failure;

/// St Mary's doctor, at replica 0.
const USER: &str = "d001";
const PASSWORD: &str = "doctor123";
const PATIENTS: [&str; 2] = ["p001", "p002"];
const DIAGNOSIS: &str = "Essential hypertension (benchmark record)";
const PRESCRIPTION: &str = "Amlodipine 5 mg once daily";

/// One replica's API and the doctor's token there (tokens are signed by each node's own
/// key, so each replica needs its own login).
#[derive(Debug)]
struct Session {
    base: String,
    /// The doctor signed in here, and their password.
    user: String,
    password: &'static str,
    /// (generation, token): the generation tells a worker whether someone else already
    /// logged in again after the 401 it saw.
    token: RwLock<(u64, String)>,
    relogin: Mutex<()>,
}

#[derive(Debug)]
pub struct HttpDriver {
    client: reqwest::Client,
    sessions: Vec<Session>,
    record_bytes: usize,
}

/// The doctor who signs in at the `lane`-th replica (organisation `lane`).
fn doctor_of(lane: usize) -> (String, &'static str) {
    if lane == 0 {
        (USER.to_string(), PASSWORD)
    } else {
        (crate::init::bench_doctor(lane), crate::init::BENCH_PASSWORD)
    }
}

async fn login(client: &reqwest::Client, s: &Session) -> anyhow::Result<String> {
    let (base, user) = (&s.base, &s.user);
    let resp = client
        .post(format!("{base}/api/login"))
        .json(&serde_json::json!({"username": user, "password": s.password}))
        .send()
        .await
        .with_context(|| format!("logging in at {base}"))?;
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
    if status != 200 {
        bail!(
            "login as {user} at {base} answered {status} {body} (bench needs a cluster made \
             with `medchain init --demo --bench-accounts`)"
        );
    }
    body["token"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("login at {base} answered without a token"))
}

impl HttpDriver {
    pub async fn login(
        client: reqwest::Client,
        urls: &[String],
        record_bytes: usize,
    ) -> anyhow::Result<HttpDriver> {
        let mut sessions = Vec::new();
        for (lane, base) in urls.iter().enumerate() {
            let (user, password) = doctor_of(lane);
            let mut session = Session {
                base: base.clone(),
                user,
                password,
                token: RwLock::new((0, String::new())),
                relogin: Mutex::new(()),
            };
            session.token = RwLock::new((0, login(&client, &session).await?));
            sessions.push(session);
        }
        if sessions.is_empty() {
            bail!("no replica to send records to");
        }
        Ok(HttpDriver {
            client,
            sessions,
            record_bytes,
        })
    }

    pub fn lanes(&self) -> usize {
        self.sessions.len()
    }

    /// Add one record at replica `lane`; `seq` makes its content unique (identical
    /// content would be stored once, which flatters the storage cost).
    pub async fn submit(&self, lane: usize, seq: u64) -> Result<(), Failure> {
        let s = &self.sessions[lane % self.sessions.len()];
        let (generation, token) = s.token.read().await.clone();
        let body = record_body(PATIENTS[(seq % 2) as usize], seq, self.record_bytes);
        let resp = self
            .client
            .post(format!("{}/api/add_record", s.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| Failure::from_reqwest(&e))?;
        let status = resp.status().as_u16();
        if status == 401 {
            self.relogin(s, generation).await;
            return Err(Failure::Status(status));
        }
        if status != 200 {
            return Err(Failure::Status(status));
        }
        let v: serde_json::Value = resp.json().await.map_err(|e| Failure::from_reqwest(&e))?;
        if v["record_id"].is_string() && v["block_height"].is_u64() && v["block_hash"].is_string() {
            Ok(())
        } else {
            Err(Failure::Other("bad_body"))
        }
    }

    /// A 401 means the token expired (15 minutes) or the node restarted: log in once
    /// more, unless another worker already did since this token was read.
    async fn relogin(&self, s: &Session, seen_generation: u64) {
        let _one_at_a_time = s.relogin.lock().await;
        if s.token.read().await.0 != seen_generation {
            return;
        }
        match login(&self.client, s).await {
            Ok(t) => *s.token.write().await = (seen_generation + 1, t),
            Err(e) => {
                eprintln!("warning: {e:#}");
                // Do not hammer a replica that refuses logins (it throttles after five).
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// The add_record JSON for one record, padded with notes to about `record_bytes`.
pub fn record_body(patient: &str, seq: u64, record_bytes: usize) -> String {
    let body = |notes: &str| {
        serde_json::json!({
            "patient_id": patient,
            "diagnosis": DIAGNOSIS,
            "prescription": PRESCRIPTION,
            "notes": notes,
        })
        .to_string()
    };
    let mut notes = format!("benchmark record {seq}; ");
    let fixed = body(&notes).len();
    let pad = record_bytes.saturating_sub(fixed);
    notes.extend(std::iter::repeat_n('x', pad));
    body(&notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_bodies_have_the_asked_size_and_differ() {
        for size in [200, 1024, 10_000] {
            let b = record_body("p001", 7, size);
            assert_eq!(b.len(), size);
            let v: serde_json::Value = serde_json::from_str(&b).unwrap_or_default();
            assert_eq!(v["patient_id"], "p001");
        }
        assert_ne!(record_body("p001", 1, 1024), record_body("p001", 2, 1024));
    }
}
