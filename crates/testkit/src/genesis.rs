//! One way to make a test genesis, replacing the per-suite copies; every knob a suite
//! used to spell by hand is a builder option, so each suite still gets its exact genesis.

use medchain_types::codec::FORMAT_VERSION;
use medchain_types::genesis::ClientInfo;
use medchain_types::{
    Genesis, GenesisConsent, GenesisUser, PublicKey, ReplicaId, ReplicaInfo, UserRole,
};

use crate::keys::TestKeys;

/// Builds a genesis of `n` replicas and `c` clients holding [`TestKeys`].
///
/// Defaults (what the PBFT tests and the simulator use): organisation `org-{i}`, no
/// addresses, clients named `client-{i}`, no users, no consents. Names and addresses are
/// plain `fn`s so the builder stays `Debug` and cannot capture test state.
#[derive(Debug, Clone)]
pub struct GenesisBuilder {
    chain_id: String,
    keys: TestKeys,
    replicas: usize,
    clients: usize,
    organisation: fn(usize) -> String,
    /// (peer address, HTTP address) of replica `i`.
    addresses: fn(usize) -> (String, String),
    client_name: fn(usize) -> String,
    extra_clients: Vec<ClientInfo>,
    users: Vec<GenesisUser>,
    consents: Vec<GenesisConsent>,
    /// Whether each organisation gets an encryption key (`TestKeys::encryption`).
    encrypted: bool,
}

impl GenesisBuilder {
    /// 4 replicas and 2 clients (f = 1), the smallest cluster that tolerates a fault.
    pub fn new(chain_id: impl Into<String>, keys: TestKeys) -> Self {
        GenesisBuilder {
            chain_id: chain_id.into(),
            keys,
            replicas: 4,
            clients: 2,
            organisation: |i| format!("org-{i}"),
            addresses: |_| (String::new(), String::new()),
            client_name: |i| format!("client-{i}"),
            extra_clients: Vec::new(),
            users: Vec::new(),
            consents: Vec::new(),
            encrypted: false,
        }
    }

    /// Give each organisation the encryption key `keys.encryption(i)`: patient data on
    /// this chain is sealed. Off by default, so that suites keep their exact genesis.
    pub fn encrypted(mut self) -> Self {
        self.encrypted = true;
        self
    }

    pub fn replicas(mut self, n: usize) -> Self {
        self.replicas = n;
        self
    }

    /// Clients `0..c` holding `keys.client(i)`.
    pub fn clients(mut self, c: usize) -> Self {
        self.clients = c;
        self
    }

    /// A client with a key of the caller's choosing, listed after the keyed clients.
    pub fn client(mut self, name: impl Into<String>, public_key: PublicKey) -> Self {
        self.extra_clients.push(ClientInfo {
            name: name.into(),
            public_key,
        });
        self
    }

    pub fn organisations(mut self, name: fn(usize) -> String) -> Self {
        self.organisation = name;
        self
    }

    pub fn addresses(mut self, peer_and_http: fn(usize) -> (String, String)) -> Self {
        self.addresses = peer_and_http;
        self
    }

    pub fn client_names(mut self, name: fn(usize) -> String) -> Self {
        self.client_name = name;
        self
    }

    pub fn user(mut self, user: GenesisUser) -> Self {
        self.users.push(user);
        self
    }

    /// A user of organisation 0 with the display name `display_name`.
    pub fn user_in(
        self,
        user_id: &str,
        role: UserRole,
        department: &str,
        display_name: &str,
    ) -> Self {
        self.user(GenesisUser {
            user_id: user_id.into(),
            role,
            organisation: ReplicaId(0),
            department: department.into(),
            display_name: display_name.into(),
        })
    }

    pub fn consent(mut self, patient: &str, doctor: &str) -> Self {
        self.consents.push(GenesisConsent {
            patient: patient.into(),
            doctor: doctor.into(),
        });
        self
    }

    pub fn build(self) -> Genesis {
        let replicas = (0..self.replicas)
            .map(|i| {
                let (peer_addr, http_addr) = (self.addresses)(i);
                ReplicaInfo {
                    id: ReplicaId(u16::try_from(i).expect("a genesis has at most 64 replicas")),
                    organisation: (self.organisation)(i),
                    public_key: self.keys.replica(i).public(),
                    peer_addr,
                    http_addr,
                }
            })
            .collect();
        let clients = (0..self.clients)
            .map(|i| ClientInfo {
                name: (self.client_name)(i),
                public_key: self.keys.client(i).public(),
            })
            .chain(self.extra_clients)
            .collect();
        Genesis {
            format_version: FORMAT_VERSION,
            chain_id: self.chain_id,
            replicas,
            clients,
            users: self.users,
            consents: self.consents,
            policy: Default::default(),
            encryption_keys: if self.encrypted {
                (0..self.replicas)
                    .map(|i| self.keys.encryption_public(i))
                    .collect()
            } else {
                Vec::new()
            },
        }
    }
}
