//! Credentials the platforms refuse while the daemon runs (`crate::credentials`).

use std::time::Duration;

use super::InternalEvent;
use crate::credentials::{Credential, CredentialStats};
use crate::metrics::bump;

/// A credential that had worked is refused: operators are told, and the daemon stops
/// if it stays refused for `exit_in`.
pub struct CredentialRefused<'a> {
    pub credential: &'a Credential,
    pub status: u16,
    pub exit_in: Duration,
}

impl InternalEvent for CredentialRefused<'_> {
    type Counters = CredentialStats;
    fn emit(self, c: &CredentialStats) {
        bump(&c.refused, 1);
        tracing::error!(
            platform = %self.credential.platform,
            var = %self.credential.var,
            status = self.status,
            exit_in_s = self.exit_in.as_secs(),
            "{} refuses the token in {} (HTTP {}); sirena stops in {} min unless it is accepted again",
            self.credential.platform,
            self.credential.var,
            self.status,
            self.exit_in.as_secs().div_ceil(60),
        );
    }
}

/// A refused credential is accepted again within the window.
pub struct CredentialAccepted<'a> {
    pub credential: &'a Credential,
}

impl InternalEvent for CredentialAccepted<'_> {
    type Counters = CredentialStats;
    fn emit(self, c: &CredentialStats) {
        bump(&c.recovered, 1);
        tracing::info!(
            platform = %self.credential.platform,
            var = %self.credential.var,
            "{} accepts the token in {} again",
            self.credential.platform,
            self.credential.var,
        );
    }
}
